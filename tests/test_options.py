"""The options of a reconstruction are defined once (dblink.options): the command line, the
Python API, the Fiji macro keys and the Java plugin's key list all agree with that definition."""
import re

import pytest

from conftest import ROOT
from dblink import options
from dblink.cli import build_parser
from dblink.errors import DBlinkError
from dblink.imagej import PLUGIN_KEYS, macro_options
from dblink.options import ReconstructOptions

JAVA = (ROOT / "fiji-plugin" / "src" / "main" / "java" / "dblink" / "DBlink_Reconstruct.java").read_text()


def java_array(name: str) -> list[str]:
    m = re.search(r"\b%s\s*=\s*\{(.*?)\};" % name, JAVA, re.S)
    return re.findall(r'"([^"]*)"', m.group(1))


def test_java_keys_are_the_options_macro_keys_plus_the_plugins_own():
    assert sorted(java_array("KEYS")) == sorted(list(options.macro_keys()) + list(PLUGIN_KEYS))


def test_java_command_line_flags_match_the_options():
    m = re.search(r"String\[\]\[\] flags = \{(.*?)\};", JAVA, re.S)
    pairs = re.findall(r'\{"([^"]+)", "([^"]+)"\}', m.group(1))
    flags, keys = options.cli_flags(), options.macro_keys()
    for key, flag in pairs:
        assert flags[flag] == keys[key], (key, flag)
    bools = {k for k, name in keys.items() if name in ("confidence", "auto")}
    assert {k for k, _ in pairs} | bools == set(keys), "every option key reaches the command line"
    assert '"skip_confidence"' in JAVA and '"--no-confidence"' in JAVA
    assert '"auto"' in JAVA and '"--auto"' in JAVA


def test_every_option_is_on_the_command_line_with_its_help():
    sub = build_parser()._subparsers._group_actions[0].choices["reconstruct"]
    dests = {a.dest: a for a in sub._actions}
    for f in options.option_fields():
        assert f.name in dests, f.name
        assert f.metadata["help"] in dests[f.name].help


def test_command_line_and_api_give_the_same_options():
    argv = ["t.csv", "-o", "o.tif", "--pixel-size", "20", "--roi", "-500,-500,2000,2000",
            "--stride", "8", "--no-confidence", "--max-memory", "2G", "--tile", "0", "--tta", "4"]
    from dblink.cli import _join_negative_values
    ns = build_parser().parse_args(["reconstruct", *_join_negative_values(argv)])
    o = options.from_args(ns)
    assert o == ReconstructOptions.make(pixel_size=20.0, roi=(-500, -500, 2000, 2000), stride=8,
                                        confidence=False, max_memory=2 * 2**30, tile=0, tta=4)
    assert o == ReconstructOptions.make(pixel_size="20", roi="-500,-500,2000,2000", stride=8,
                                        confidence=False, max_memory="2G", tile=0, tta="4")
    assert o.changed() == {"pixel_size": 20.0, "roi": (-500.0, -500.0, 2000.0, 2000.0), "stride": 8,
                           "confidence": False, "max_memory": 2 * 2**30, "tile": 0, "tta": 4}


def test_macro_keys_give_the_same_options():
    o = macro_options({"table": "x.csv", "show": "true", "pixel_size": "20", "stride": "8",
                       "skip_confidence": "true", "window": "0", "tile": "0", "tta": "4"})
    assert o == ReconstructOptions.make(pixel_size=20.0, stride=8, confidence=False, tile=0, tta=4)
    assert o.window is None  # 0 = the model's, as the dialog says


@pytest.mark.parametrize("kw,match", [
    ({"strid": 2}, "unknown option 'strid' \\(did you mean stride\\?\\)"),
    ({"stride": "two"}, "--stride must be a whole number, got 'two'"),
    ({"stride": True}, "--stride must be a whole number"),
    ({"tta": 3}, "--tta must be one of 1, 4, 8, got 3"),
    ({"device": "gpu"}, "--device must be one of auto, cpu, cuda, mps"),
    ({"roi": "1,2,3"}, "--roi must be X0,Y0,WIDTH,HEIGHT"),
    ({"roi": (0, 0, -1, 5)}, "--roi width and height must be > 0"),
    ({"exposure": 0}, "--exposure must be a positive"),
    ({"max_memory": "8 GB RAM"}, "--max-memory must be a size like"),
    ({"last_frame": 0}, "--last-frame must be >= 1"),
])
def test_bad_values_are_one_line_errors(kw, match):
    with pytest.raises(DBlinkError, match=match):
        ReconstructOptions.make(**kw)


def test_unknown_macro_key_is_an_error():
    with pytest.raises(DBlinkError, match="unknown macro key 'stide' \\(did you mean stride\\?\\)"):
        macro_options({"table": "x.csv", "stide": "8"})


def test_docs_list_every_option():
    """docs/ARCHITECTURE.md carries the generated option table (regenerate it with
    ``python -c "from dblink.options import markdown_table; print(markdown_table())"``)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    assert options.markdown_table() in text
