"""Every feature's tables, imported so that `Base.metadata` is complete (Alembic, tests)."""

from agents import models as agents_models
from agents.help import models as help_models
from agents.transfer import models as transfer_models
from core import audit as audit_models
from core.auth import models as auth_models
from core.db import Base
from dialer import models as dialer_models
from dialer.welfare import models as welfare_models
from hotline import models as hotline_models
from ivr import models as ivr_models
from recordings import models as recordings_models
from recordings.qa import models as qa_models
from workforce import models as workforce_models
from workforce.practice import models as practice_models

__all__ = [
    "Base",
    "agents_models",
    "audit_models",
    "auth_models",
    "dialer_models",
    "help_models",
    "hotline_models",
    "ivr_models",
    "practice_models",
    "qa_models",
    "recordings_models",
    "transfer_models",
    "welfare_models",
    "workforce_models",
]
