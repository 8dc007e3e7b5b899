import click

from fp4ref.explain import explain

from ._args import parse_values, policies, policy_options, DTYPES


@click.command("explain", context_settings={"ignore_unknown_options": True})
@policy_options
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float64", show_default=True)
@click.argument("value", type=click.UNPROCESSED)
def explain_cmd(fmt, rounding, overflow, nan, neg_zero, negative, zero, dtype, value):
    """Show VALUE's two neighbours in the format, the distances, the tie and the rule that decided."""
    try:
        x = parse_values([value], dtype)[0]
        click.echo(str(explain(float(x), fmt, rounding, **policies(overflow, nan, neg_zero, negative, zero))))
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
