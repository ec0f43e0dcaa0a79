"""Another CKAN (a state portal, a neighbouring county's hub), spoken to through `ckanapi`."""

from __future__ import annotations

from typing import Any

import ckanapi
import requests

from hub import __version__
from hub.errors import HubError


class RemoteError(HubError):
    """A call to another CKAN failed: unreachable, refused, or not a CKAN."""


class Remote:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.ckan = ckanapi.RemoteCKAN(self.url, apikey=token,
                                       user_agent=f"district-data-hub/{__version__}")

    def call(self, action: str, **data: Any) -> Any:
        """The action's result; `None` when the other side says Not Found."""
        try:
            return self.ckan.call_action(action, data,
                                         requests_kwargs={"timeout": self.timeout})
        except ckanapi.NotFound:
            return None
        except ckanapi.NotAuthorized as exc:
            raise RemoteError(f"{self.url}: {action} was refused (check the token and its "
                              f"rights): {_message(exc)}") from None
        except ckanapi.ValidationError as exc:
            raise RemoteError(f"{self.url}: {action} rejected the data: "
                              f"{_message(exc)}") from None
        except (ckanapi.CKANAPIError, ckanapi.errors.ServerIncompatibleError) as exc:
            raise RemoteError(f"{self.url}: {action} failed: {str(exc)[:300]}") from None
        except requests.RequestException as exc:
            raise RemoteError(f"cannot reach {self.url}: {type(exc).__name__}: "
                              f"{str(exc)[:300]}") from None


def _message(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, dict):
        if "message" in detail:
            return str(detail["message"])
        return "; ".join(f"{k}: {v}" for k, v in detail.items() if k != "__type")
    return str(detail)
