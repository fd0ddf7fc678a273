"""Serving-time assembly: request rows + online store → raw rows for ``FeatureView.compute``.

A request row carries entity keys and request inputs, and may carry feature
table values too (those win). Values it leaves out are read from the online
store by entity key. An unknown entity, a missing store, or a row the view
refuses raises FeatureLookupError naming the row and the field — never a
silent default.

Example:
    >>> raw = assemble_online(view, request_rows, online=store)   # doctest: +SKIP
    >>> view.compute(raw)                                          # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raycore.errors import FeatureLookupError
from raycore.features.online import OnlineStore
from raycore.features.view import FeatureView

__all__ = ["assemble_online"]


def assemble_online(view: FeatureView, rows: pd.DataFrame, *, online: OnlineStore | None) -> pd.DataFrame:
    """Raw rows (coerced to the view's dtypes) with every feature-table value filled in."""
    frame = rows.astype(object).reset_index(drop=True)
    for table in view.tables:
        fields = table.field_names
        for name in fields:
            if name not in frame.columns:
                frame[name] = None
        need = frame[fields].isna().any(axis=1).to_numpy()
        if not need.any():
            continue
        todo = np.flatnonzero(need)
        if online is None:
            raise FeatureLookupError(
                f"{fields[0]}: value missing and no online store is configured",
                row=int(todo[0]),
                field=fields[0],
                hint=f"send every {table.name} value ({', '.join(fields)}) or configure the online store",
            )
        keys = [tuple(frame.at[i, c] for c in table.entity) for i in todo]
        found = online.read(table.store_name, keys)
        columns = {name: frame.columns.get_loc(name) for name in fields}
        for i, key, values in zip(todo, keys, found, strict=True):
            if values is None:
                shown = ", ".join(f"{c}={v}" for c, v in zip(table.entity, key, strict=True))
                raise FeatureLookupError(
                    f"no online features for {shown} in {table.store_name}",
                    row=int(i),
                    field=table.entity[0],
                    hint=f"check the key, send the {table.name} values in the request, "
                    "or materialise the feature table (`foundry up` and `foundry train` do)",
                )
            for name, col in columns.items():
                if pd.isna(frame.iat[i, col]):
                    frame.iat[i, col] = values.get(name)
    raw = view.coerce_inputs(frame)
    problems = view.problems(raw)
    bad = np.flatnonzero((problems != "").to_numpy())
    if len(bad):
        raise FeatureLookupError(
            str(problems.iloc[bad[0]]),
            row=int(bad[0]),
            field=view.request[0].name if view.request else None,
            hint="fix the request inputs named in the message",
        )
    return raw
