"""The recipe registry (fp4ref.recipes): records are complete, valid, serializable, and listed."""
from __future__ import annotations

import numpy as np
import pytest

from fp4ref import recipes
from fp4ref.quantize import resolve

REQUIRED = {"ocp-mxfp4", "ocp-mxfp6-e2m3", "ocp-mxfp6-e3m2", "ocp-mxfp8-e4m3", "ocp-mxfp8-e5m2", "ocp-mxint8",
            "te-nvfp4", "te-nvfp4-2d", "te-mxfp8", "torchao-mxfp4-floor", "torchao-mxfp4-ceil", "torchao-mxfp4-even",
            "torchao-mxfp4-rceil", "torchao-nvfp4", "jax-mxfp8", "jax-nvfp4", "paper-e8m0", "paper-e4m3",
            "paper-ue5m3", "paper-e8m0-ts", "paper-e4m3-ts", "paper-ue5m3-ts", "quartet-fwd"}


def test_every_required_recipe_is_registered():
    assert REQUIRED <= set(recipes.names())


@pytest.mark.parametrize("name", recipes.names())
def test_recipe_is_documented_valid_and_round_trips(name):
    r = recipes.get(name)
    assert r.summary and r.source and r.proof
    resolve(r, np.float32, (1, 32) if r.blocks != "2d" else r.block)
    assert recipes.Recipe.from_dict(r.to_dict()) == r


def test_table_has_one_line_per_recipe():
    lines = recipes.table().splitlines()
    assert len(lines) == len(recipes.names())
    assert all(line.split()[0] == n for line, n in zip(lines, recipes.names()))


def test_recipes_that_could_not_be_run_say_so():
    for name in ("te-mxfp8", "paper-ue5m3", "paper-ue5m3-ts"):
        r = recipes.get(name)
        assert "not run" in (r.notes + r.proof).lower()


def test_registering_a_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        recipes.register(recipes.get("ocp-mxfp4"))
