from crossroute.routing.accounts import Candidate, worth_another_candidate
from crossroute.routing.lease import Lease, Router
from crossroute.routing.registry import ModelRegistry, Route

__all__ = ["Candidate", "Lease", "ModelRegistry", "Route", "Router", "worth_another_candidate"]
