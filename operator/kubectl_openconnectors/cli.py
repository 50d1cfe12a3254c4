"""The command line (click): one thin function per subcommand; the work is in the other modules.

The options every subcommand shares (`-n`, `-o`, `--kubeconfig`, `--context`) are written after
the subcommand, as with kubectl, and collected into one `Options` by their callbacks, so that no
command function takes them one by one.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, TypeVar

import click
import urllib3
import yaml
from kubernetes.client.rest import ApiException

from kubectl_openconnectors import actions, authorize, reads, render, tree, why
from kubectl_openconnectors.errors import EXIT_CODES_HELP, ExitCode, PluginError
from kubectl_openconnectors.kube import Connection, Kube, connect
from kubectl_openconnectors.render import Palette

F = TypeVar("F", bound=Callable[..., Any])
OUTPUTS = ("table", "json", "yaml")
DEFAULT_TIMEOUT = 60.0


@dataclass
class Options:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    output: str = "table"


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> Any:
        if value is not None:
            setattr(ctx.ensure_object(Options), name, value)
        return value

    return callback


def _shared(*declarations: str, **settings: Any) -> Callable[[F], F]:
    """An option stored into Options under its long name, not passed to the command."""
    name = declarations[-1].lstrip("-").replace("-", "_")
    option: Callable[[F], F] = click.option(
        *declarations, callback=_store(name), expose_value=False, **settings
    )
    return option


def common(*, all_namespaces: bool = False) -> Callable[[F], F]:
    """The shared options; `-A` only where a command can list the whole cluster."""

    def decorate(function: F) -> F:
        options = [
            _shared(
                "-n", "--namespace", help="Namespace (default: the kubeconfig context's, else `default`)."
            ),
            _shared("-o", "--output", type=click.Choice(OUTPUTS), help="table (default), json or yaml."),
            _shared(
                "--kubeconfig", help="Path of the kubeconfig (default: $KUBECONFIG, else ~/.kube/config)."
            ),
            _shared("--context", help="The kubeconfig context to use."),
        ]
        if all_namespaces:
            options.append(
                _shared("-A", "--all-namespaces", is_flag=True, help="Every namespace, and every account.")
            )
        for option in reversed(options):  # click lists options in the order of the decorators
            function = option(function)
        return function

    return decorate


def waiting(function: F) -> F:
    timeout = click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds --wait waits (exit code 4 when they pass).",
    )
    wait = click.option("--wait", is_flag=True, help="Return once the operator has handled the request.")
    return wait(timeout(function))


def options() -> Options:
    return click.get_current_context().ensure_object(Options)


def run(command: Callable[[Options, Connection], int]) -> None:
    """Connect, run, print a PluginError on stderr, and exit with the command's code."""
    opts = options()
    try:
        if opts.all_namespaces and opts.namespace:
            raise PluginError("-n and -A exclude each other", ExitCode.USAGE)
        connection = connect(opts.kubeconfig, opts.context, opts.namespace)
        with connection.api:
            code = command(opts, connection)
    except PluginError as error:  # its text may quote the API server, which may quote a tenant
        click.echo(f"error: {render.safe(str(error), render.MESSAGE_LIMIT)}", err=True)
        code = error.code
    except (urllib3.exceptions.HTTPError, ApiException) as error:  # from plan, which calls the API itself
        click.echo(f"error: the Kubernetes API: {render.safe(str(error), render.MESSAGE_LIMIT)}", err=True)
        code = ExitCode.API_ERROR
    click.get_current_context().exit(int(code))


def emit(opts: Options, data: Any, table: Callable[[Palette], str]) -> None:
    """The table on a terminal (coloured only there), or the data as JSON or YAML."""
    if opts.output == "table":
        click.echo(table(Palette.for_stream(sys.stdout)), color=True)
    else:
        click.echo(render.dump(data, opts.output))


def version() -> str:
    """The release this plugin belongs to: the zipapp's `_version.py`, which hack/plugin.py writes (a
    zipapp carries no dist-info to read), else the installed distribution's metadata."""
    try:
        built = importlib.import_module("kubectl_openconnectors._version")
    except ModuleNotFoundError:
        return metadata.version("open-connectors-operator")
    return str(built.VERSION)


def _show_version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    # Looked up only when asked for: every other command starts without reading metadata.
    if value and not ctx.resilient_parsing:
        click.echo(f"kubectl openconnectors, version {version()}")
        ctx.exit()


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """See and steer Open Connectors instances: `kubectl openconnectors COMMAND --help`.

    Uses only your kubeconfig's credentials and never calls the platform. status, why and the
    actions never read a Secret's values; plan reads the Secrets of its files and their stored
    copies, compares them in memory and shows key names only; authorize writes the provider's
    code into the instance's authorization Secret and reads that Secret back, never showing a value.
    """


@cli.command(epilog=EXIT_CODES_HELP)
@common(all_namespaces=True)
def status() -> None:
    """Accounts -> instances -> token Secrets -> the Pods that use them, with Ready, Synced,
    reason and age. Exits 1 when an instance or account shown is not Ready."""
    run(_status)


def _status(opts: Options, connection: Connection) -> ExitCode:
    namespace = None if opts.all_namespaces else connection.namespace
    inputs, notes = reads.for_status(Kube(connection.api), namespace)
    nodes = tree.build(inputs)
    moment = render.now()
    data = {"namespace": namespace or "", "items": [n.as_dict() for n in nodes], "notes": notes}
    emit(opts, data, lambda palette: render.render_tree(nodes, palette, moment))
    for note in notes if opts.output == "table" else []:
        click.echo(f"note: {render.safe(note, render.MESSAGE_LIMIT)}", err=True)
    return ExitCode.NOT_READY if tree.not_ready(nodes) else ExitCode.OK


@cli.command("why", epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option(
    "--events",
    "limit",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many of the latest Events to show.",
)
@common()
def why_command(name: str, limit: int) -> None:
    """Why an instance is as it is: conditions, the last Events, status.plannedAction, the next
    retry, and for a blocked deletion the command that releases it. Exits 0 only when Ready."""
    run(lambda opts, connection: _why(opts, connection, name, limit))


def _why(opts: Options, connection: Connection, name: str, limit: int) -> ExitCode:
    kube = Kube(connection.api)
    obj = reads.instance(kube, connection.namespace, name)
    notes: list[str] = []
    data = why.report(obj, reads.events(kube, obj, notes), limit)
    moment = render.now()
    emit(opts, {**data, "notes": notes}, lambda palette: why.render_report(data, palette, moment))
    return ExitCode.OK if why.healthy(data) else ExitCode.NOT_READY


def _act(opts: Options, request: actions.Request, kube: Kube, wait: tuple[bool, float]) -> ExitCode:
    """Wait if asked, then report the request: what was written and what became of it."""
    if wait[0]:
        request = actions.wait(kube, request, wait[1])
    emit(opts, request.as_dict(), lambda palette: _request_line(request, palette))
    return request.code


def _request_line(request: actions.Request, palette: Palette) -> str:
    """One line; the message may quote a condition (a tenant's or the platform's words): safe."""
    written = ", ".join(f"{k}={'(removed)' if v is None else v}" for k, v in request.written.items())
    state = {"handled": "green", "failed": "red", "timeout": "red"}.get(request.result)
    result = palette.paint(request.result, state) if state else request.result
    took = f" after {request.seconds:.1f}s" if request.seconds is not None else ""
    message = f": {render.safe(request.message, render.MESSAGE_LIMIT)}" if request.message else ""
    where = render.safe(f"{request.namespace}/{request.name}")
    return f"{request.action} {where} {result}{took}{message} ({render.safe(written or 'nothing written')})"


def _simple(action: Callable[[Kube, str, str], actions.Request], help_text: str) -> click.Command:
    @click.argument("name")
    @waiting
    @common()
    def command(name: str, wait: bool, timeout: float) -> None:
        def go(opts: Options, connection: Connection) -> ExitCode:
            kube = Kube(connection.api)
            return _act(opts, action(kube, connection.namespace, name), kube, (wait, timeout))

        run(go)

    command.__doc__ = help_text
    return click.command(action.__name__, epilog=EXIT_CODES_HELP)(command)


RECONCILE_HELP = (
    "Ask for a full pass with a platform check now (the openconnectors.io/reconcile-requested-at annotation)."
)
PAUSE_HELP = (
    "Stop every platform call and token Secret write (the openconnectors.io/paused annotation); "
    "Ready keeps its value."
)
cli.add_command(_simple(actions.reconcile, RECONCILE_HELP))
cli.add_command(_simple(actions.pause, PAUSE_HELP))
cli.add_command(_simple(actions.resume, "Remove the pause; a spec changed meanwhile is applied."))


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option(
    "--instance-id", type=click.IntRange(min=1), required=True, help="The remote instance to adopt."
)
@click.option(
    "-f",
    "--filename",
    type=click.File("r"),
    required=True,
    help="The ConnectorInstance to create (its spec without instanceID), or - for stdin.",
)
@click.option(
    "--take-over-from",
    metavar="UID",
    help="The UID of the gone object whose k8s-uid tag the instance still carries.",
)
@waiting
@common()
def adopt(
    name: str, instance_id: int, filename: Any, take_over_from: str | None, wait: bool, timeout: float
) -> None:
    """Create NAME from a manifest with spec.instanceID, so that it adopts that remote instance
    (one PUT, no POST). Through an account this needs its allowAdoption."""
    manifest = _one_document(filename)

    def go(opts: Options, connection: Connection) -> ExitCode:
        namespace = opts.namespace or str(
            (manifest.get("metadata") or {}).get("namespace") or connection.namespace
        )
        adoption = actions.Adoption(namespace, name, instance_id, manifest, take_over_from)
        kube = Kube(connection.api)
        return _act(opts, actions.adopt(kube, adoption), kube, (wait, timeout))

    run(go)


def _one_document(stream: Any) -> dict[str, Any]:
    documents = [d for d in yaml.safe_load_all(stream) if d is not None]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise click.UsageError(
            f"{stream.name}: expected one ConnectorInstance, found {len(documents)} documents"
        )
    return documents[0]


@cli.command("authorize", epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Receive the provider's redirect on this loopback address (default: the callback URL's "
    "host:port when it is a loopback http URL, else --paste).",
)
@click.option(
    "--paste",
    is_flag=True,
    help="Read the whole address the browser was redirected to from stdin, one line (for a callback "
    "that is not on this machine, such as an OAuth proxy's page).",
)
@click.option(
    "--no-browser", is_flag=True, help="Print the consent URL (one line on stdout) instead of opening it."
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the operator has taken the code: Ready, or why not.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=authorize.Choices.timeout,
    show_default=True,
    help="Seconds each wait lasts: for the consent URL, for the redirect on --listen, for the "
    "operator (exit code 4 when they pass).",
)
@common()
def authorize_command(
    name: str, listen: str | None, paste: bool, no_browser: bool, wait: bool, timeout: float
) -> None:
    """Give an OAuth connector its grant: open status.authorization.url (the provider's consent
    page), receive the provider's redirect, check its state, and write its code (or a denied
    consent's error) with the state into the Secret of spec.oauth.authorizationSecretRef, creating
    it if missing. Then wait until the operator has taken the code: exits 0 once Ready, 1 when it
    stalls (the reason and message say why). The code is never printed."""
    if listen and paste:
        raise click.UsageError("--listen and --paste exclude each other")
    choices = authorize.Choices(listen, paste, not no_browser, wait, timeout)
    run(lambda opts, connection: _authorize(opts, connection, name, choices))


def _authorize(opts: Options, connection: Connection, name: str, choices: authorize.Choices) -> ExitCode:
    kube = Kube(connection.api)
    choices = replace(choices, url_on_stdout=opts.output == "table")
    request = authorize.authorize(kube, connection.namespace, name, choices)
    emit(opts, request.as_dict(), lambda palette: _request_line(request, palette))
    return request.code


@cli.command("plan", epilog=EXIT_CODES_HELP)
@click.option(
    "-f",
    "--filename",
    "files",
    type=click.File("r"),
    multiple=True,
    required=True,
    help="Manifests not yet applied (repeatable; - for stdin).",
)
@common()
def plan_command(files: tuple[Any, ...]) -> None:
    """What the operator would do with these manifests (create, adopt, update which fields,
    nothing), computed from the stored objects without a platform call. It reads the Secrets of
    the files and their stored copies, compares them in memory (never in a dry run) and shows their
    key names, never a value."""
    documents = [d for stream in files for d in yaml.safe_load_all(stream) if isinstance(d, dict)]
    run(lambda opts, connection: _plan(opts, connection, documents))


def _plan(opts: Options, connection: Connection, documents: list[dict[str, Any]]) -> int:
    from kubectl_openconnectors import plan  # only this command needs it

    items = plan.compute(connection.api, documents, connection.namespace)
    rows = [[i.kind, i.namespace, i.name, i.action, ", ".join(i.fields), i.detail] for i in items]
    data = {"items": [_plan_item(i) for i in items]}
    headers = ("KIND", "NAMESPACE", "NAME", "ACTION", "FIELDS", "DETAIL")
    emit(
        opts,
        data,
        lambda palette: render.table(headers, rows, palette, lambda _, cell: cell, render.MESSAGE_LIMIT),
    )
    return plan.exit_code(items)


def _plan_item(item: Any) -> dict[str, Any]:
    keys = ("kind", "namespace", "name", "action", "fields", "detail")
    return {key: list(item.fields) if key == "fields" else getattr(item, key) for key in keys}


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="kubectl openconnectors")
