"""`open-connectors-simulator`: run the simulator as its own process.

Tests and the benchmark talk to it over real sockets, so it must announce its port reliably (one
flushed stdout line, nothing else on stdout) and stop promptly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import click

from open_connectors_simulator.settings import DEFAULT_MAX_BODY_BYTES, SimulatorSettings

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "*")


def _parse_error_rates(values: tuple[str, ...]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in values:
        method, sep, raw = item.partition("=")
        method = method.strip().upper()
        try:
            rate = float(raw)
        except ValueError:
            rate = -1.0
        if not sep or method not in _METHODS or not 0.0 <= rate <= 1.0:
            raise click.BadParameter(f"expected METHOD=PROBABILITY (e.g. POST=0.5), got {item!r}")
        rates[method] = rate
    return rates


def _stop_on_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop when stdin reaches EOF, i.e. when a parent holding the pipe exits or closes it.

    A test runner that is killed outright cannot run its fixture teardown; this keeps it from
    leaving an orphaned simulator listening behind it.
    """
    fd = sys.stdin.fileno()

    def on_readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    loop.add_reader(fd, on_readable)


async def _serve(settings: SimulatorSettings, host: str, port: int, exit_on_stdin_eof: bool) -> None:
    from open_connectors_simulator.server import run_simulator  # aiohttp only when serving

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if exit_on_stdin_eof:
        _stop_on_stdin_eof(loop, stop)
    async with run_simulator(settings, host, port) as url:
        # The parent process reads exactly this line to learn the port; keep it the only stdout.
        sys.stdout.write(f"listening on {url}\n")
        sys.stdout.flush()
        await stop.wait()
    logging.getLogger("open_connectors_simulator").info("simulator stopped")


@click.command("open-connectors-simulator", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8089, show_default=True, help="0 picks a free port."
)
@click.option(
    "--organization-secret",
    envvar="OC_SIM_ORGANIZATION_SECRET",
    show_envvar=True,
    required=True,
    help="Organization secret clients must send (prefer the environment variable).",
)
@click.option(
    "--user-secret",
    envvar="OC_SIM_USER_SECRET",
    show_envvar=True,
    required=True,
    help="User secret clients must send (prefer the environment variable).",
)
@click.option(
    "--latency-ms", type=click.IntRange(0, 60_000), default=0, show_default=True, help="Delay per API call."
)
@click.option(
    "--error-rate",
    "error_rates",
    multiple=True,
    metavar="METHOD=P",
    help="Answer this fraction of calls of METHOD (or *) with --error-status; repeatable.",
)
@click.option("--error-status", type=click.IntRange(400, 599), default=503, show_default=True)
@click.option("--seed", type=int, default=None, help="Seed for the random error rate, for reproducible runs.")
@click.option("--rotate-token-on-update", is_flag=True, help="Issue a new instance token on every PUT/PATCH.")
@click.option(
    "--empty-list",
    type=click.Choice(["404", "empty"]),
    default="404",
    show_default=True,
    help="Answer list calls that match nothing with 404 (platform behaviour) or [].",
)
@click.option("--closeio-password-required", is_flag=True, help="Make Close.io's password a required key.")
@click.option(
    "--max-body-bytes", type=click.IntRange(1024), default=DEFAULT_MAX_BODY_BYTES, show_default=True
)
@click.option(
    "--oauth-code-ttl",
    type=click.FloatRange(min=0, min_open=True, max=86_400),
    default=120.0,
    show_default=True,
    help="Seconds a code of the simulated OAuth provider stays valid.",
)
@click.option(
    "--exit-on-stdin-eof",
    is_flag=True,
    help="Stop when stdin is closed (lets a parent process guarantee the simulator dies with it).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
def simulator_command(
    host: str,
    port: int,
    organization_secret: str,
    user_secret: str,
    latency_ms: int,
    error_rates: tuple[str, ...],
    error_status: int,
    seed: int | None,
    rotate_token_on_update: bool,
    empty_list: str,
    closeio_password_required: bool,
    max_body_bytes: int,
    oauth_code_ttl: float,
    exit_on_stdin_eof: bool,
    log_level: str,
) -> None:
    """Run a local simulator of the Open Connectors instances API."""
    if not organization_secret.strip() or not user_secret.strip():
        raise click.BadParameter("secrets must not be empty")
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = SimulatorSettings(
        organization_secret=organization_secret,
        user_secret=user_secret,
        latency_ms=latency_ms,
        error_rates=_parse_error_rates(error_rates),
        error_status=error_status,
        rotate_token_on_update=rotate_token_on_update,
        empty_list_404=empty_list == "404",
        closeio_password_required=closeio_password_required,
        max_body_bytes=max_body_bytes,
        random_seed=seed,
        oauth_code_ttl_seconds=oauth_code_ttl,
    )
    try:
        asyncio.run(_serve(settings, host, port, exit_on_stdin_eof))
    except OSError as exc:  # typically the port is taken or the host cannot be bound
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def main() -> None:
    """Entry point of the `open-connectors-simulator` console script."""
    simulator_command()
