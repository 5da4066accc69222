from crossroute.accounts.model import Account, ApiKey, Credential, OAuthToken, config_account_id, mask

__all__ = ["Account", "ApiKey", "Credential", "OAuthToken", "config_account_id", "mask"]
