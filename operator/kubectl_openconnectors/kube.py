"""The plugin's only door to Kubernetes: the kubeconfig login and plain JSON requests.

The `kubernetes` package loads the kubeconfig (token, client certificate, exec and auth-provider
logins are its job) and signs the requests; the answers are read as plain JSON dicts, the shape
`kubectl get -o json` shows, rather than as the package's generated models. The Secrets the tree
shows are read as metadata only (`PartialObjectMetadataList`): their values never reach this
process. (`plan` compares the Secrets of a file with their stored copies, through the client
itself: plan.py.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kubectl_openconnectors import names
from kubectl_openconnectors.errors import ExitCode, PluginError, refused_you

JSON = "application/json"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Connection:
    """An API client and the namespace a command defaults to (the flag, else the context's)."""

    api: client.ApiClient
    namespace: str


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Connection:
    """Log in as kubectl would: `--kubeconfig`, else $KUBECONFIG, else ~/.kube/config."""
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context, persist_config=False)
        default = namespace or _context_namespace(kubeconfig, context)
    except (config.ConfigException, OSError) as error:
        raise PluginError(f"cannot load the kubeconfig: {error}", ExitCode.API_ERROR) from None
    return Connection(api, default)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def _segment(value: str | None) -> str | None:
    """A name from the command line as one path segment: `a/b` or a control character cannot
    reach another path or break the request (the API server then answers 404)."""
    return quote(value, safe="") if value is not None else None


def custom_path(plural: str, namespace: str | None, name: str | None = None) -> str:
    """The path of our kinds' collection or object; no namespace: the whole cluster."""
    path = f"/apis/{names.GROUP}/{names.VERSION}"
    namespace, name = _segment(namespace), _segment(name)
    if namespace is not None:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    return f"{path}/{name}" if name is not None else path


def core_path(plural: str, namespace: str | None, name: str | None = None) -> str:
    namespace, name = _segment(namespace), _segment(name)
    path = "/api/v1" + (f"/namespaces/{namespace}" if namespace is not None else "") + f"/{plural}"
    return f"{path}/{name}" if name is not None else path


class Kube:
    """Requests through one ApiClient; every failure becomes a PluginError with its exit code."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def get(self, path: str, query: dict[str, str] | None = None, accept: str = JSON) -> Any:
        return self._call("GET", path, query=query, accept=accept)

    def items(
        self, path: str, query: dict[str, str] | None = None, accept: str = JSON
    ) -> list[dict[str, Any]]:
        """A list's items (the API server's page size is left alone: these lists are small)."""
        listed = self.get(path, query, accept)
        return list(listed.get("items") or [])

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", path, body=body, content_type=MERGE_PATCH)
        return result

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", path, body=body, content_type=JSON)
        return result

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str | None = None,
        accept: str = JSON,
    ) -> Any:
        headers = {"Accept": accept} | ({"Content-Type": content_type} if content_type else {})
        try:
            response = self.api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as error:
            raise refusal(error, method, path) from None
        except urllib3.exceptions.HTTPError as error:
            raise PluginError(f"cannot reach the Kubernetes API: {error}", ExitCode.API_ERROR) from None
        return json.loads(response.data or b"null")


def refusal(error: ApiException, method: str, path: str) -> PluginError:
    """The API server's own message (kubectl shows the same), with the exit code for its status
    (errors.py's rule: the input refused is 2, the user refused or no answer 5)."""
    message = _status_message(error) or f"HTTP {error.status} {error.reason}"
    if error.status == 404:
        return PluginError(message, ExitCode.NOT_FOUND, error.status)
    if refused_you(error.status, message):
        return PluginError(f"{method} {path}: {message}", ExitCode.API_ERROR, error.status)
    return PluginError(message, ExitCode.USAGE, error.status)  # invalid or conflicting input


def _status_message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""
