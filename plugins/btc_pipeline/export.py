"""Bars as files: CSV, Parquet and Excel bytes of a frame (for the dashboard's downloads)."""

from __future__ import annotations

import io

import pandas as pd

#: Format name -> (MIME type, file extension).
FORMATS = {
    "csv": ("text/csv", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


def to_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """``frame`` in ``fmt`` (``csv``, ``parquet``, ``xlsx``); times as UTC ISO-8601 in CSV.

    Raises:
        ValueError: Unknown format.
    """
    if fmt == "csv":
        return str(frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ")).encode()
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    elif fmt == "xlsx":
        # Excel has no time zones: the times are written as UTC without an offset
        plain = frame.assign(**{c: frame[c].dt.tz_localize(None) for c in frame.columns if hasattr(frame[c], "dt")})
        plain.to_excel(buffer, index=False, sheet_name="bars")
    else:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    return buffer.getvalue()
