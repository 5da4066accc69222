"""The upstream kinds and well-known hosts, as plain data.

The config validates `kind:` and `preset:` against these without importing the
provider classes, which import the config: the dependency goes one way,
providers -> config -> kinds. providers/__init__.py maps each kind here to its
class (a test checks that the two agree). `env` lists the variables the
zero-config start looks at."""

from __future__ import annotations

from dataclasses import dataclass

# kind -> the base URL used when a provider of that kind sets none (None: base_url is required)
DEFAULT_BASE_URLS: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "openai-responses": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "kimi": "https://api.kimi.com/coding/v1",
    "codex": "https://chatgpt.com/backend-api/codex",
    "qwen": "https://portal.qwen.ai/v1",  # a login's own resource_url wins over it, a configured base_url over both
    "qoder": "https://api3.qoder.sh",  # the global chat gateway (CN: https://gateway.qoder.com.cn)
    "codebuddy": "https://www.codebuddy.ai/v2",  # `region: cn` picks REGIONS' host instead; base_url wins over both
}


@dataclass(frozen=True, slots=True)
class LoginDefaults:
    """A login provider's kind: its accounts come from `crossroute login` (the auth dir), not `api_keys`."""

    auth_url: str  # the OAuth server's base
    models: tuple[str, ...]  # the built-in list, used when the config lists none
    api_keys: bool = False  # whether the provider entry (or an auth-dir file) may also hold API keys


LOGIN_KINDS: dict[str, LoginDefaults] = {
    "kimi": LoginDefaults("https://auth.kimi.com", ("kimi-for-coding", "kimi-for-coding-highspeed")),
    "codex": LoginDefaults("https://auth.openai.com", ("gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex")),
    "qwen": LoginDefaults("https://chat.qwen.ai", ("coder-model", "qwen3-coder-plus", "qwen3-coder-flash",
                                                   "vision-model")),
    # the global OpenAPI host (CN: https://openapi.qoder.com.cn); the tiers every plan has (the live list adds more)
    "qoder": LoginDefaults("https://openapi.qoder.sh", ("auto", "lite", "efficient", "performance", "ultimate")),
    # the models seed 001 confirmed working with an API key; the live list (/v3/config) replaces them
    "codebuddy": LoginDefaults("https://www.codebuddy.ai", ("gpt-5.5", "gpt-5.4", "claude-sonnet-4.6",
                                                            "gemini-3.1-pro"), api_keys=True),
}


@dataclass(frozen=True, slots=True)
class Region:
    """One region of a provider with regional hosts (`region:` in the config)."""

    base_url: str
    auth_url: str


# kind -> region name -> hosts; the first region is the default. base_url / auth_url in the config win.
REGIONS: dict[str, dict[str, Region]] = {
    "codebuddy": {
        "intl": Region("https://www.codebuddy.ai/v2", "https://www.codebuddy.ai"),
        "cn": Region("https://copilot.tencent.com/v2", "https://copilot.tencent.com"),
    },
}
# Login kinds whose login and API are not built yet: the config says so rather than half-serve them.
COMING_LOGIN_KINDS: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Preset:
    kind: str
    base_url: str
    env: tuple[str, ...]
    models: tuple[str, ...] = ()
    adaptation: str | None = None  # the provider class the host needs (providers/__init__.py ADAPTATIONS)


PRESETS: dict[str, Preset] = {
    "openai": Preset("openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",), ("gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini")),
    "anthropic": Preset("anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",),
                        ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")),
    "gemini": Preset("gemini", "https://generativelanguage.googleapis.com", ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
                     ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")),
    "openrouter": Preset("openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",),
                         ("deepseek/deepseek-chat", "qwen/qwen3-coder", "anthropic/claude-sonnet-4.5")),
    "deepseek": Preset("openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), ("deepseek-chat", "deepseek-reasoner")),
    "zai": Preset("openai", "https://api.z.ai/api/paas/v4", ("ZAI_API_KEY", "ZHIPUAI_API_KEY"), ("glm-4.6", "glm-4.5-air")),
    "nvidia": Preset("openai", "https://integrate.api.nvidia.com/v1", ("NVIDIA_API_KEY", "NIM_API_KEY"),
                     ("meta/llama-3.3-70b-instruct", "qwen/qwen3-coder-480b-a35b-instruct")),
    "ollama": Preset("openai", "http://127.0.0.1:11434/v1", ("OLLAMA_HOST",), ()),
    "groq": Preset("openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), ("llama-3.3-70b-versatile", "openai/gpt-oss-120b")),
    "together": Preset("openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",), ("Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8",)),
    "mistral": Preset("openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), ("mistral-large-latest", "codestral-latest")),
    "xai": Preset("openai", "https://api.x.ai/v1", ("XAI_API_KEY",), ("grok-4", "grok-code-fast-1")),
    "fireworks": Preset("openai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",), ()),
    "cerebras": Preset("openai", "https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",), ("qwen-3-coder-480b",)),
    "dashscope": Preset("openai", "https://dashscope.aliyuncs.com/compatible-mode/v1", ("DASHSCOPE_API_KEY",),
                        ("qwen3-coder-plus", "qwen3-coder-flash"), adaptation="dashscope"),
    "moonshot": Preset("openai", "https://api.moonshot.ai/v1", ("MOONSHOT_API_KEY",), ("kimi-k2-0905-preview",)),
}
