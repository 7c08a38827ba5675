"""Pictures: maps and the HTML reports.

``raster`` bins millions of points onto Datashader's pixel grid in one pass; ``maps`` shades
those grids into PNGs with a legend; ``charts`` draws the report's HoloViews/Bokeh charts;
``report`` and ``segment_report`` write ``report.html`` for each job, readable offline.
"""

from sonicatlas.lazy import exports

__getattr__, __dir__ = exports(__name__, {
    "write_report": "report", "write_segment_report": "segment_report", "save_png": "maps",
    "bin_reduction": "raster",
})
__all__ = __dir__()
