from crossroute.routing.accounts import AccountPool, Candidate, worth_another_candidate
from crossroute.routing.registry import ModelRegistry, Route

__all__ = ["AccountPool", "Candidate", "ModelRegistry", "Route", "worth_another_candidate"]
