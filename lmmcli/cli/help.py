"""How commands present themselves: help without typer's internals (no `{DATA}`, `<str>`, `<list[str]>`), an
Examples section in every command's --help, and usage errors as one plain message (no "Value error," prefix)."""

from __future__ import annotations

import re

import typer
import typer.core

TYPE_NAMES = {"<int>": "N", "<float>": "NUMBER", "<str>": "TEXT", "<path>": "FILE", "<list[str]>": "TEXT"}
VALIDATOR_PHRASES = [
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"Input should be a valid number, unable to parse string as a number"), "expected a number"),
    (re.compile(r"Input should be a valid integer, unable to parse string as an integer"), "expected a whole number"),
    (re.compile(r"Input should be a valid integer, got a number with a fractional part"), "expected a whole number"),
    (re.compile(r"Input should be a valid boolean, unable to interpret input"), "expected true or false"),
    # typer < 0.29 validates with click's types, whose wording differs
    (re.compile(r"'[^']*' is not a valid float\.?"), "expected a number"),
    (re.compile(r"'[^']*' is not a valid int(eger)?\.?"), "expected a whole number"),
    (re.compile(r"'[^']*' is not a valid boolean\.?"), "expected true or false"),
]


def plain_message(message: str) -> str:
    """A usage error's message without the validation library's phrasing (pydantic's or click's)."""
    for pattern, replacement in VALIDATOR_PHRASES:
        message = pattern.sub(replacement, message)
    return message


def examples_epilog(examples: list[str]) -> str:
    """The Examples section: one command per line, kept as written (click's \\b stops re-wrapping)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {e}" for e in examples)


def _type_name(record: str) -> str:
    for raw, name in TYPE_NAMES.items():
        record = record.replace(raw, name)
    return record


class LmmCommand(typer.core.TyperCommand):
    """A TyperCommand whose usage line, argument list and usage errors read as lmm's own."""

    def collect_usage_pieces(self, ctx):
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = param.metavar or param.name.upper()
            name += "..." if param.nargs != 1 and not name.endswith("...") else ""
            pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx, formatter) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((param.metavar or param.name.upper(), param.help or ""))
            else:
                opts.append((_type_name(record[0]), _type_name(record[1])))
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)

    def get_short_help_str(self, limit: int = 45) -> str:
        """The whole first sentence in `lmm --help`'s command list (wrapped there), never cut with '...'."""
        text = " ".join((self.short_help or self.help or "").split())
        return re.split(r"(?<!\.)\.\s+(?=[A-Z])", text)[0].rstrip(".")

    def parse_args(self, ctx, args):
        ctx.meta["lmm.args"] = list(args)       # the command line as given, for reports that record it
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as exc:
            exc.message = plain_message(exc.message)
            raise
