"""Try `reaper-lsp complete examples/demo.py --line 12 --col 17`: with no account configured,
the offline engine completes the line from similar lines above."""


def area(shape):
    if shape.kind == "square":
        return shape.side * shape.side
    if shape.kind == "rectangle":
        return shape.width * shape.height
    if shape.kind == "circle":
        return 3.14159 * shape.radius * shape.radius
    if shape.kind ==
    raise ValueError(f"unknown shape {shape.kind!r}")
