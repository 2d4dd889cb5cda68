"""A realistic demonstration clinic (``ehr demo``), made through the real services.

Every record is written the way staff would write it: FHIR requests through the router as the
signed-in user, signatures with the user's password again, ledger entries through the
ledger's operations. The demo data therefore passes every rule and gate and is audited like
real use. See ``seed.py`` for what is seeded.
"""

from ehr.demo.accounts import ACCOUNTS, demo_password
from ehr.demo.seed import Seeded, seed_clinic, seed_demo

__all__ = ["ACCOUNTS", "Seeded", "demo_password", "seed_clinic", "seed_demo"]
