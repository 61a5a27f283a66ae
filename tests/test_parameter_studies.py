"""Parameter studies of Tables 3 and 5 (reproduce.parameter_studies): printed counts from the published CSVs,
our counts against them, and what the printed counts imply."""
import json

import pytest
import torch

from acda.models import get_model, list_models
from acda.profile import count_parameters
from reproduce import parameter_studies as ps


def _meta_params(name: str) -> int:
    with torch.device("meta"):  # no memory, no initialisation: counting only
        return count_parameters(get_model(name))


def test_printed_counts_are_read_from_the_published_csvs_and_equal_the_paper():
    assert ps.PRINTED == {"Baseline": 4.78, "Ad-ResNet-s": 4.87, "Ad-ResNet-m": 11.87, "CondConv-s": 14.8,
                          "CondConv-l": 25.5}
    assert ps.PRINTED_IMAGENET == {"Ad-ResNet-s": 3.85, "Ad-ResNet-m": 9.83, "CondConv-s": 13.3,
                                   "CondConv-l": 24.0}
    assert ps.TABLE5_PRINTED == {"baseline": 2.28e6, "acda": 1.97e6}
    assert list(ps.PRINTED) == list(ps.ROWS)  # the studies' row order
    assert list(ps.PRINTED_IMAGENET) == ["Ad-ResNet-s", "Ad-ResNet-m", "CondConv-s", "CondConv-l"]
    assert ps.printed_params("table3", {"s": "CondConv-s [40]"}) == {"s": 14.8}


def test_printed_params_names_a_missing_row():
    with pytest.raises(KeyError, match="CondConv-s"):
        ps.printed_params("table3", {"CondConv-s": "CondConv-s"})  # the CSV's row carries "[40]"


def test_rows_are_the_registered_crowd_models():
    assert set(ps.ROWS.values()) <= set(list_models())
    assert len(set(ps.ROWS.values())) == 5


def test_table3_parameter_study():
    st = ps.table3_parameter_study()
    json.dumps(st)  # plain data
    assert st["printed"] == ps.PRINTED and st["printed_imagenet"] == ps.PRINTED_IMAGENET
    rows = {r["row"]: r for r in st["rows"]}
    for row, name in ps.ROWS.items():
        assert rows[row]["model"] == name
        assert rows[row]["paper"]["params"] == _meta_params(name)
        # the closest grid point is at least as close as the default, and nothing was changed by searching
        assert abs(st["closest"][row]["delta_M"]) <= abs(rows[row]["paper"]["delta_M"])
    bd = st["baseline_difference"]
    # by hand: 4 ACDA layers (two at 128, two at 256 channels), coefficients m = 6, 3×3 convs 9 per pair
    pairs = 2 * 128 ** 2 + 2 * 256 ** 2
    assert bd["replaced_3x3_convs"] == 9 * pairs and bd["paper"]["acda_coef"] == 6 * pairs
    assert bd["implied_generator_per_layer"] == pytest.approx((0.09e6 + 9 * pairs - 6 * pairs) / 4)
    assert bd["same_kernel_backbone"] > ps.PRINTED["Baseline"] * 1e6
    assert st["imagenet_difference"]["Ad-ResNet-s"]["implied_decoder"] == round((4.87 - 3.85) * 1e6) + 513_000
    assert len(st["findings"]) >= 5 and all(isinstance(f, str) for f in st["findings"])


def test_table5_parameter_study():
    res = ps.table5_parameter_study(grid=((128, 32), (256, 64)))
    assert res["printed"] == {"baseline": 2.28e6, "acda": 1.97e6}
    assert res["printed_difference"] == 2.28e6 - 1.97e6
    assert [(r["channels"], r["width"]) for r in res["rows"]] == [(128, 32), (256, 64)]
    r32, r64 = res["rows"]
    assert not r32["acda_smaller"] and r64["acda_smaller"]
    assert r64["baseline"] == count_parameters(get_model("restoration_baseline"))
    assert r64["difference"] == r64["baseline"] - r64["acda"]
    assert set(res["closest"]) == {"baseline", "acda"}
