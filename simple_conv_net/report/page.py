"""index.html: every figure and number of the report on one page, openable from disk."""

from __future__ import annotations

import html


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f3f3f3}td.diag{background:#dbe9f6;font-weight:bold}img{max-width:100%;border:1px solid #eee}
.note{color:#a60}code{background:#f5f5f5;padding:0 3px}"""


def _table(headers, rows, diagonal=False) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, cell in enumerate(row):
            tag = "th" if c == 0 else "td"
            css = ' class="diag"' if diagonal and c == r + 1 else ""
            cells.append(f"<{tag}{css}>{html.escape(str(cell))}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _img(figure: dict, alt: str) -> str:
    return (f'<p><img src="{html.escape(figure["file"])}" alt="{html.escape(alt)}" '
            f'width="{figure["width"]}" height="{figure["height"]}"></p>')


def percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def render_html(report: dict) -> str:
    classes = report["classes"]
    cm = report["confusion_matrix"]["matrix"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(report['title'])}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(report['title'])}</h1>"]
    parts.append(_table(["run", ""], [
        ("checkpoint", report["checkpoint"]), ("model", report["model"]), ("dataset", report["dataset"]),
        ("impl", report["impl"]), ("epoch", report["epoch"]), ("test images evaluated", report["evaluated"]),
        ("accuracy", percent(report["accuracy"])), ("mean test loss", f"{report['loss']:.4f}"),
    ]))
    parts.append("<h2>Confusion matrix</h2><p>Rows: true class; columns: predicted class.</p>")
    parts.append(_img(report["confusion_matrix"], "confusion matrix"))
    parts.append(_table(["true \\ predicted", *classes, "total"],
                        [(classes[t], *row, sum(row)) for t, row in enumerate(cm)], diagonal=True))
    parts.append("<h2>Precision and recall per class</h2>")
    parts.append(_table(["class", "precision", "recall", "images of the class", "images predicted as it"],
                        [(c["class"], percent(c["precision"]), percent(c["recall"]), c["support"], c["predicted"])
                         for c in report["per_class"]]))
    filters = report["filters"]
    parts.append(f"<h2>Filters of the first convolution layer</h2><p><code>{html.escape(filters['layer'])}"
                 f"</code>, weights {filters['shape']}; each filter scaled on its own.</p>")
    parts.append(_img(filters, "filters"))
    features = report["feature_maps"]
    parts.append(f"<h2>Feature maps of test image #{features['image_index']}</h2>"
                 f"<p>True class {html.escape(features['true'])}, predicted {html.escape(features['predicted'])} "
                 f"(p={features['probability']:.3f}). Every channel, each scaled on its own.</p>")
    parts.append(_img(features["input"], "input image"))
    for name, layer in features["layers"].items():
        parts.append(f"<h3>{html.escape(name)} ({html.escape(layer['op'])}): "
                     f"{' x '.join(map(str, layer['shape']))}</h3>")
        parts.append(_img(layer, f"feature maps of {name}"))
    mis = report["misclassified"]
    parts.append(f"<h2>Misclassified test images</h2><p>{mis['count']} of {report['evaluated']} misclassified; "
                 f"{len(mis['shown'])} shown, most confident first.</p>")
    parts.append(_img(mis, "misclassified images"))
    if mis["shown"]:
        parts.append(_table(["test index", "true", "predicted", "probability"],
                            [(m["index"], classes[m["true"]], classes[m["predicted"]], f"{m['probability']:.3f}")
                             for m in mis["shown"]]))
    curves = report["training_curves"]
    parts.append("<h2>Training curves</h2>")
    if "file" in curves:
        parts.append(_img(curves, "training curves"))
        keys = [k for k in ("epoch", "train_loss", "test_loss", "test_accuracy", "seconds") if
                any(k in r for r in curves["epochs"])]
        parts.append(_table(keys, [tuple(_cell(r.get(k)) for k in keys) for r in curves["epochs"]]))
    else:
        parts.append(f"<p class='note'>{html.escape(curves['note'])}</p>")
    layers = report["layers"]
    parts.append("<h2>Layers</h2><p>Parameters and multiply-adds per image, counted from the shapes "
                 "(<code>python -m simple_conv_net.summary</code>).</p>")
    parts.append(_table(["layer", "op", "output", "params", "of which bias", "MACs/image"],
                        [(r["name"], r["op"], "x".join(map(str, r["output_shape"])), f"{r['params']:,}",
                          f"{r['bias_params']:,}", f"{r['macs_per_image']:,}") for r in layers["rows"]]
                        + [("total", "", "", f"{layers['total']['params']:,}",
                            f"{layers['total']['bias_params']:,}", f"{layers['total']['macs_per_image']:,}")]))
    parts.append("<p>Every number on this page is in <a href='report.json'>report.json</a>.</p></body></html>\n")
    return "\n".join(parts)


def _cell(value):
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else value)
