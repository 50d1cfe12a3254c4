"""The names the plugin repeats (kubectl_openconnectors/names.py, which may not import the
operator) agree with the operator's, and the annotations it writes are the ones the README
documents: a rename on either side fails here, not in a user's cluster."""

from __future__ import annotations

import re
from pathlib import Path

from connector_operator.api import names as operator
from connector_operator.api import oauth
from connector_operator.api.status import Reason
from connector_operator.engine import deleteretry
from connector_operator.kube import secrets
from connector_operator.reconciler import deletion
from kubectl_openconnectors import names, why

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_kinds_and_marks_are_the_operators() -> None:
    pairs = {
        names.GROUP: operator.GROUP,
        names.VERSION: operator.VERSION,
        names.INSTANCE_KIND: operator.KIND,
        names.INSTANCE_PLURAL: operator.PLURAL,
        names.ACCOUNT_KIND: operator.ACCOUNT_KIND,
        names.ACCOUNT_PLURAL: operator.ACCOUNT_PLURAL,
        names.CLUSTER_ACCOUNT_KIND: operator.CLUSTER_ACCOUNT_KIND,
        names.CLUSTER_ACCOUNT_PLURAL: operator.CLUSTER_ACCOUNT_PLURAL,
        names.FINALIZER: operator.FINALIZER,
        names.MANAGED_BY_LABEL: operator.MANAGED_BY_LABEL,
        names.MANAGED_BY_VALUE: operator.MANAGED_BY_VALUE,
        names.PAUSED_ANNOTATION: operator.PAUSED_ANNOTATION,
        names.RECONCILE_REQUEST_ANNOTATION: operator.RECONCILE_REQUEST_ANNOTATION,
        names.TAKE_OVER_ANNOTATION: operator.TAKE_OVER_ANNOTATION,
        names.PAUSED_REASON: Reason.PAUSED.value,
        names.DELETION_BLOCKED_REASON: Reason.DELETION_BLOCKED.value,
        names.PROGRESS_FIELD: deleteretry.PROGRESS_FIELD,
        names.DELETE_HANDLER: deleteretry.DELETE_HANDLER,
        names.AUTHORIZATION_REQUIRED_REASON: Reason.AUTHORIZATION_REQUIRED.value,
        names.REAUTHENTICATION_REQUIRED_REASON: Reason.REAUTHENTICATION_REQUIRED.value,
        names.CODE_KEY: oauth.CODE_KEY,
        names.STATE_KEY: oauth.STATE_KEY,
        names.ERROR_KEY: oauth.ERROR_KEY,
        names.WATCH_LABEL: operator.WATCH_LABEL,
        names.WATCH_INPUT: secrets.INPUT_ROLE,
    }
    assert {mine: theirs for mine, theirs in pairs.items() if mine != theirs} == {}


def test_the_annotations_it_writes_are_documented_with_their_values() -> None:
    assert f'{names.PAUSED_ANNOTATION}: "true"' in README
    assert f"{names.PAUSED_ANNOTATION}-" in README  # how the README removes it: resume does the same
    assert re.search(re.escape(names.RECONCILE_REQUEST_ANNOTATION) + r"=", README)
    assert f"{names.TAKE_OVER_ANNOTATION}:" in README
    assert "`status.lastHandledReconcileAt` records the value handled" in README


def test_the_release_command_is_the_one_the_operators_message_names() -> None:
    assert why.release_command("sales", "crm") == deletion.release_command("sales", "crm")
    assert "deletionPolicy: Orphan` releases the object" in README
