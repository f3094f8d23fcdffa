"""The `turnout` command: serve | mappings check | import | probe | record | keys | admin."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from engine import __version__
from engine.logs import configure_logging
from engine.settings import Settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="turnout", description="An OpenAI-compatible LLM gateway.")
    parser.add_argument("--version", action="version", version=f"turnout {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate, import the config and serve the API")
    serve.add_argument(
        "--config", type=Path, help="LiteLLM-format config file (default: the default alias set)"
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; TURNOUT_HOST)")
    serve.add_argument("--port", type=int, help="port (default 4000; TURNOUT_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    _own_mappings_option(serve)
    mappings = commands.add_parser("mappings", help="work with mapping files")
    mappings_commands = mappings.add_subparsers(dest="mappings_command", required=True)
    check = mappings_commands.add_parser("check", help="validate every mapping; errors name file:line")
    check.add_argument("--dir", type=Path, help="mappings folder (default: the project's mappings/)")
    _section_parsers(mappings_commands)
    _own_mappings_option(check)
    imports = commands.add_parser("import", help="import a LiteLLM-format config into SQL and exit")
    imports.add_argument("config", type=Path)
    probe = commands.add_parser(
        "probe", help="send the same chat requests to every deployment and report what each can do"
    )
    probe.add_argument(
        "--config", type=Path, help="import this LiteLLM-format config first (default: probe what SQL holds)"
    )
    probe.add_argument(
        "--alias", action="append", default=[], metavar="NAME", help="probe only this alias (repeatable)"
    )
    probe.add_argument(
        "--write", action="store_true", help="store the verified capabilities in SQL and print what changed"
    )
    probe.add_argument("--timeout", type=_seconds, default=120.0, help="seconds per request (default 120)")
    _keys_parser(commands)
    _admin_parser(commands)
    _record_parser(commands)
    return parser


def _record_parser(commands: Any) -> None:
    record = commands.add_parser(
        "record",
        help="send the golden scenarios (or one request) through the gateway to a live backend and "
        "write what went upstream and came back as golden fixtures, secrets redacted",
    )
    record.add_argument(
        "model", help="LiteLLM-style model string, <provider>/<model>: the prefix picks the mapping"
    )
    record.add_argument("--base-url", required=True, help="the backend's api_base, as a config would give it")
    record.add_argument(
        "--api-key-env",
        default="TURNOUT_RECORD_API_KEY",
        metavar="VAR",
        help="environment variable holding the backend's key (default TURNOUT_RECORD_API_KEY)",
    )
    record.add_argument("--name", help="provider name of the fixture folder (default: the model's prefix)")
    record.add_argument("--out", type=Path, help="folder to write (default: tests/golden/fixtures/<name>/)")
    record.add_argument("--force", action="store_true", help="replace files that already exist")
    record.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="record only this scenario (repeatable)",
    )
    record.add_argument(
        "--request", metavar="JSON|@FILE", help="record this one request instead of the scenarios"
    )
    record.add_argument("--save-as", default="exchange", metavar="NAME", help="fixture name for --request")
    record.add_argument("--route", default="/v1/chat/completions", help="gateway route for --request")
    record.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another litellm_params entry, e.g. api_version=2024-10-21 (repeatable)",
    )
    record.add_argument("--timeout", type=_seconds, default=120.0, help="seconds per request (default 120)")
    record.add_argument(
        "--image-url", help="public image URL for the vision scenario (default: served locally)"
    )
    record.add_argument(
        "--context-chars",
        type=int,
        default=4_000_000,
        help="prompt length that provokes error_context_length (default 4000000)",
    )


def _section_parsers(mappings_commands: Any) -> None:
    """`mappings show` and `mappings eval`: one section of one provider (engine.mapping.explore)."""
    show = mappings_commands.add_parser("show", help="print one section of a provider mapping, as compiled")
    run = mappings_commands.add_parser("eval", help="run one section of a provider mapping on a JSON fixture")
    for parser in (show, run):
        parser.add_argument("provider", metavar="PROVIDER")
        parser.add_argument(
            "operation", metavar="OPERATION", help="chat, embeddings, ...; or errors, discovery"
        )
        parser.add_argument("section", metavar="SECTION", nargs="?", help="request, response, stream, ...")
        parser.add_argument("--dir", type=Path, help="mappings folder (default: the project's mappings/)")
        _own_mappings_option(parser)
    show.add_argument("--python", action="store_true", help="print the generated Python instead of the YAML")
    run.add_argument("--input", type=Path, metavar="FILE.json", help="the section's variables by name")
    run.add_argument(
        "--stream",
        type=Path,
        metavar="FILE",
        help="for SECTION stream: the upstream's stream as sent (SSE, NDJSON)",
    )


def _own_mappings_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--mappings",
        type=_folder,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of one's own mappings, read on top of the bundled ones (repeatable; later wins; "
        "after TURNOUT_MAPPINGS_PATH)",
    )


def _admin_parser(commands: Any) -> None:
    admin = commands.add_parser("admin", help="admin console users (passwords stored hashed in SQL)")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    set_password = admin_commands.add_parser(
        "set-password", help="create a console user or change its password"
    )
    set_password.add_argument("--user", default="admin", help="user name (default: admin)")
    set_password.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of standard input"
    )
    remove = admin_commands.add_parser("remove", help="remove a console user")
    remove.add_argument("--user", default="admin", help="user name (default: admin)")
    admin_commands.add_parser("list", help="the console users' names")


def _keys_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="virtual keys: create, list, revoke")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="issue a key and print it (shown only once)")
    create.add_argument("--models", help="comma-separated aliases the key may use (default: all)")
    create.add_argument("--budget", type=float, help="spend limit in USD (beyond it: 429)")
    create.add_argument("--rpm", type=int, help="requests per minute (beyond them: 429)")
    create.add_argument("--tpm", type=int, help="tokens per minute (beyond them: 429)")
    create.add_argument("--name", help="a name for the key (key_alias)")
    create.add_argument("--expires", help="lifetime, e.g. 30d, 12h (default: never)")
    create.add_argument("--privacy", choices=["local", "private"], help="tiers the key may reach")
    keys_commands.add_parser("list", help="the active keys (never the keys themselves)")
    revoke = keys_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key", metavar="KEY_OR_PREFIX", help="the key, or the 8-character prefix list shows")


def _folder(value: str) -> Path:
    if not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"{value} is not a folder")
    return Path(value)


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {value}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    for name in ("config", "host", "port"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    if getattr(args, "mappings", None):  # on top of TURNOUT_MAPPINGS_PATH's folders
        overrides["mappings_path"] = [*Settings().mappings_path, *args.mappings]
    settings = Settings(**overrides)
    configure_logging(
        settings.log_level, settings.log_format, credentials=(settings.master_key, settings.salt_key)
    )
    if args.command == "mappings" and args.mappings_command in ("show", "eval"):
        from engine.mapping.commands import run_explore

        return run_explore(args, (args.dir or settings.mappings_dir, *settings.mappings_path))
    if args.command == "mappings":
        from engine.mapping.commands import run_check

        return run_check((args.dir or settings.mappings_dir, *settings.mappings_path))
    if args.command == "import":
        return _import(settings.model_copy(update={"config": args.config}))
    if args.command == "probe":
        return _probe(settings, args.alias, args.write, args.timeout)
    if args.command == "record":
        return _record(settings, args)
    if args.command == "keys":
        from engine.keys.command import run_keys

        logging.getLogger("alembic").setLevel(logging.WARNING)
        return run_keys(settings, args.keys_command, vars(args))
    if args.command == "admin":
        from engine.console.command import run_admin

        logging.getLogger("alembic").setLevel(logging.WARNING)
        return run_admin(settings, args.admin_command, vars(args))
    from engine.serve import serve

    return serve(settings, args.workers)


def _record(settings: Settings, args: argparse.Namespace) -> int:
    from engine.record import RecordOptions, run_record

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury the report
    params = {key: _param_value(value) for key, _, value in (item.partition("=") for item in args.param)}
    options = RecordOptions(
        model=args.model,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        mappings_dir=settings.mappings_dir,
        name=args.name,
        out=args.out,
        force=args.force,
        scenarios=args.scenario,
        request=args.request,
        save_as=args.save_as,
        route=args.route,
        params=params,
        timeout=args.timeout,
        image_url=args.image_url,
        context_chars=args.context_chars,
    )
    return run_record(options)


def _param_value(text: str) -> Any:
    """A --param value: JSON when it parses as such (8192, true), else the text (2024-10-21)."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _import(settings: Settings) -> int:
    from engine.serve import prepare

    result = prepare(settings)
    if isinstance(result, str):
        print(f"turnout: {result}", file=sys.stderr)
        return 2
    return 0


def _probe(settings: Settings, aliases: list[str], write: bool, timeout: float) -> int:
    """With a config file: import it as `serve` would, then probe. Without one: probe the rows SQL holds
    (re-importing the default set would replace the rows of the config a gateway was started with)."""
    from engine.probe import run_probe

    if settings.config is not None:
        from engine.serve import prepare

        result = prepare(settings)
        if isinstance(result, str):
            print(f"turnout: {result}", file=sys.stderr)
            return 2
        settings = result[0]
    elif settings.migrate_on_start:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # before the import: it logs as it loads
        from engine.store.migrate import upgrade_to_head

        upgrade_to_head(settings.database_url)
    return run_probe(settings, aliases=aliases, write=write, timeout=timeout)
