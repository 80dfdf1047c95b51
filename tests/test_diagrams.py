"""架构示意图（cnnlib/diagrams.py）：合法的 SVG，数字来自模型，book/figures/ 里提交的副本没有过期。"""

from pathlib import Path
from xml.etree import ElementTree

import pytest

import cnnlib
from cnnlib.diagrams import DIAGRAMS, diagram_svg

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", DIAGRAMS)
def test_each_diagram_is_valid_svg_and_matches_the_committed_file(name):
    svg = diagram_svg(name)
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and int(root.get("width")) > 0
    committed = (ROOT / "book" / "figures" / f"{name}.svg").read_text(encoding="utf-8")
    assert committed == svg, f"book/figures/{name}.svg 过期了：请运行 make figures"


def test_the_alexnet_figure_takes_its_shapes_from_the_model():
    svg = diagram_svg("alexnet-vs-lenet")
    for layer, shape in cnnlib.layer_shapes(cnnlib.alexnet(), 224):
        if "Conv2d" in layer or "MaxPool2d" in layer:
            assert f">{'×'.join(map(str, shape[1:]))}<" in svg, (layer, shape)
    assert "展平 → 6400" in svg and "展平 → 400" in svg


def test_show_diagram_gives_svg_and_an_html_image_for_untrusted_notebooks():
    shown = cnnlib.show_diagram("residual")
    assert shown._repr_svg_().startswith("<svg")
    assert shown._repr_html_().startswith('<img src="data:image/svg+xml;base64,')
    with pytest.raises(ValueError, match="residual"):
        cnnlib.show_diagram("resnet")
