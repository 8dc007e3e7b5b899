"""The `fp4ref` command group. Subcommands live one per module and are imported only when invoked."""
import importlib

import click

# name → (module under fp4ref.cli, attribute); loading lazily keeps start-up fast and compiles no unused kernel
_COMMANDS = {
    "formats": ("formats", "formats_cmd"),
    "encode": ("encode", "encode_cmd"),
    "decode": ("encode", "decode_cmd"),
    "explain": ("explain", "explain_cmd"),
    "hadamard": ("hadamard", "hadamard_cmd"),
    "check": ("check", "check_cmd"),
    "identify": ("check", "identify_cmd"),
    "vectors": ("vectors", "vectors_cmd"),
    "quantize": ("quantize", "quantize_cmd"),
    "dequantize": ("quantize", "dequantize_cmd"),
    "recipes": ("quantize", "recipes_cmd"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_COMMANDS)

    def get_command(self, ctx, name):
        if name not in _COMMANDS:
            return None
        module, attr = _COMMANDS[name]
        return getattr(importlib.import_module(f"fp4ref.cli.{module}"), attr)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="fp4ref")
def main():
    """fp4ref: bit-exact reference and test oracle for FP4 and MX formats."""


if __name__ == "__main__":
    main()
