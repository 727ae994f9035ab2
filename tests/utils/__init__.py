"""Helpers shared by the tests: waiting on a condition, a free port, signing in to the API.

from tests.utils import free_port, login, signed_in, until
"""

from tests.utils.api import PASSWORD, console_login, login, signed_in
from tests.utils.net import free_port
from tests.utils.waiting import until

__all__ = ["PASSWORD", "console_login", "free_port", "login", "signed_in", "until"]
