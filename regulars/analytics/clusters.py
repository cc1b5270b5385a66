"""Behavioural clusters of guests (k-means on standardised features), each named and described in
words for a marketer from the features that set it apart from the whole population.

Preparation: money and count features are right-skewed (a few guests order fifty times), so they
are log1p-transformed before scaling, else k-means spends its clusters on the tail. Every feature is
then standardised (z-score); a missing value (a guest who never rated) is set to the population
mean, i.e. z = 0, so it neither attracts nor repels. Features come in blocks (a share per menu
category, four day-part shares, ...); each standardised column is weighted by 1 / sqrt(block size),
so a block weighs as much as a single feature in the distance and a menu of twelve categories does
not outvote promo use.

The menu block is the chain's own: customer_menu_mix has a row per guest and category bought, and
with_menu_shares makes each category the chain's guests bought a feature (`menu_share:<category>`,
0 for a guest who never bought it), named and described in the category's own words.

k: k-means (fixed seed, n_init restarts) for every k in k_range; the k with the highest mean
silhouette wins (ties: the smaller k). Above max_rows_for_silhouette rows the silhouette is computed
on a random sample of that many rows drawn with the seed, as the exact score is quadratic in rows.
Above max_rows_for_choosing_k rows, k is chosen by fits on a seeded sample of that many rows (every
guest assigned to the sample's centroids for the silhouette), and only the chosen k is fitted on
every row. On 86,510 guests (the 20,000-guest world's features five times, jittered): 23.6 s
trying k = 3..8 on every row, 8.6 s with k chosen on 20,000; the same k and silhouette.

Stable output: rows are sorted by id before fitting, so input order does not matter; cluster ids
are 1..k by size (largest first, ties by centroid), so they do not permute between runs.

Fit and assignment are separate steps (fit_clusters, assign_clusters): a fit is a scaling and k
centroids, kept as a table of one row per cluster (fit_to_frame, fit_from_frame), and any day's
features are assigned to its nearest centroid through the fit's own scaling. dbt fits once a
week and assigns every guest every day (int_customer_clusters_fitted.py, customer_clusters.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances, pairwise_distances_argmin, silhouette_samples
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class Feature:
    block: str
    high: str  # phrase when the cluster is well above the population
    low: str  # phrase when well below
    label: str  # what the value means, for the description
    unit: str  # how to print it: share, money, days, count, rating
    log: bool = False  # log1p before scaling (skewed money and counts)


# The customer_features columns clustered on, by block. Columns left out are redundant with these
# (items ~ frequency, feedback_responses ~ feedback_per_order x frequency, avg_nps ~ avg_rating).
FEATURES: dict[str, Feature] = {
    "recency_days": Feature(
        "recency", "lapsed", "recently active", "days since last order", "days"
    ),
    "tenure_days": Feature(
        "tenure", "long-standing", "newcomers", "days since first order", "days"
    ),
    "frequency_orders": Feature("frequency", "frequent", "one-off", "orders", "count", log=True),
    "monetary_net_revenue": Feature(
        "monetary", "big spenders", "light spenders", "spend", "money", log=True
    ),
    "average_order_value": Feature(
        "basket", "large baskets", "small baskets", "average order", "money", log=True
    ),
    "delivery_order_share": Feature(
        "fulfilment", "delivery-heavy", "rarely delivered", "orders delivered", "share"
    ),
    "pickup_order_share": Feature(
        "fulfilment", "pickup-heavy", "rarely pick up", "orders picked up", "share"
    ),
    "dine_in_order_share": Feature(
        "fulfilment", "dine-in regulars", "rarely dine in", "orders eaten in", "share"
    ),
    "app_order_share": Feature(
        "platform", "app guests", "web guests", "orders in the app", "share"
    ),
    "morning_order_share": Feature(
        "daypart", "morning orderers", "rarely mornings", "orders before 11:00", "share"
    ),
    "lunch_order_share": Feature(
        "daypart", "lunch crowd", "rarely lunch", "orders at lunch (11-15h)", "share"
    ),
    "afternoon_order_share": Feature(
        "daypart", "afternoon orderers", "rarely afternoons", "orders 15-18h", "share"
    ),
    "evening_order_share": Feature(
        "daypart", "dinner crowd", "rarely evenings", "orders after 18:00", "share"
    ),
    "marketing_touch_order_share": Feature(
        "marketing",
        "campaign-driven",
        "organic",
        "orders after a paid or e-mail touch",
        "share",
    ),
    "promo_order_share": Feature(
        "promo", "promo hunters", "full-price payers", "orders with a promo code", "share"
    ),
    "feedback_per_order": Feature("feedback", "vocal raters", "silent", "orders rated", "share"),
    "avg_rating": Feature("rating", "happy raters", "unhappy raters", "mean rating", "rating"),
}

# A menu category's share of a guest's items, one column per category (with_menu_shares).
MENU_SHARE_PREFIX = "menu_share:"


def with_menu_shares(
    features: pd.DataFrame, menu_mix: pd.DataFrame, *, id_column: str = "customer_id"
) -> pd.DataFrame:
    """`features` with a `menu_share:<category>` column per category in `menu_mix` (one row per
    guest and category bought: id, category, item_share), 0 where a guest never bought it.
    Categories in sorted order, so that the columns do not depend on the rows' order."""
    shares = (
        menu_mix.pivot_table(
            index=id_column, columns="category", values="item_share", aggfunc="sum", fill_value=0.0
        )
        .sort_index(axis=1)
        .rename(columns=lambda category: f"{MENU_SHARE_PREFIX}{category}")
        .astype(float)
    )
    shares.columns.name = None
    merged = features.merge(shares, left_on=id_column, right_index=True, how="left")
    merged[list(shares.columns)] = merged[list(shares.columns)].fillna(0.0)
    return merged


def feature(column: str) -> Feature | None:
    """How a clustered column reads: FEATURES', or a menu category's in its own words."""
    if column in FEATURES:
        return FEATURES[column]
    if column.startswith(MENU_SHARE_PREFIX):
        category = column.removeprefix(MENU_SHARE_PREFIX).replace("_", " ").strip()
        high, low = f"heavy on {category}", f"light on {category}"
        return Feature("menu", high, low, f"{category} share of items", "share")
    return None


# |z| of a cluster mean (in population standard deviations) from which a feature describes it.
DISTINCT_Z = 0.5
NAME_PHRASES = 3
DESCRIPTION_FEATURES = 5


class TooFewCustomers(ValueError):
    """Fewer customers than the smallest k needs: a young chain, or one without order data."""


def unclustered(id_column: str = "customer_id", id_dtype: str = "int64") -> pd.DataFrame:
    """The customer_clusters table with no rows, typed as assign_clusters fills it."""
    assigned = {column: FIT_TABLE_DTYPES[column] for column in ASSIGNED_FROM_FIT}
    return _empty({id_column: id_dtype, "cluster_id": "int64", **assigned})


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


# Part of the features digest: a change to how clusters are fitted must not reuse an older fit.
# 2: the menu block is the chain's categories (with_menu_shares), not six fixed ones.
FIT_REVISION = 2

# What an assignment carries from its cluster's fit, beside the guest's cluster_id.
ASSIGNED_FROM_FIT = [
    "cluster_name",
    "cluster_description",
    "silhouette",
    "cluster_silhouette",
    "k_chosen",
    "silhouette_by_k",
]


@dataclass(frozen=True)
class ClusterFit:
    """A clustering: how a guest's features become a point (the columns, which are log1p'd, the
    value a missing one takes, the standardisation and the block weights) and the k centroids
    there, row i being cluster i + 1; `profiles` has one row per cluster as fitted (id, name,
    description, size, share, silhouettes and k, then `mean_<feature>` when fitted here)."""

    columns: list[str]
    log_columns: list[str]
    fill: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    centroids: np.ndarray
    profiles: pd.DataFrame

    def zscores(self, raw: pd.DataFrame) -> np.ndarray:
        """`raw` (the fit's columns, as floats) standardised by the fit's scaling."""
        values = _log1p(raw, self.log_columns).to_numpy(float)
        values = np.where(np.isnan(values), self.fill, values)
        return (values - self.center) / self.scale

    def points(self, raw: pd.DataFrame) -> np.ndarray:
        """`raw` where k-means sees it: z-scores, each weighted by its block."""
        return self.zscores(raw) * self.weights


def fit_clusters(
    features: pd.DataFrame,
    *,
    id_column: str = "customer_id",
    k_range: range = range(3, 9),
    seed: int = 7,
    n_init: int = 10,
    max_rows_for_silhouette: int = 5000,
    max_rows_for_choosing_k: int = 20_000,
    currency: str | None = None,
) -> tuple[ClusterFit, pd.DataFrame]:
    """Cluster one row per customer. Uses the FEATURES columns present in `features` (else every
    numeric column but the id). Returns the fit and the assignments of `features` (id,
    cluster_id, cluster_name, cluster_description). Descriptions print money with `currency`
    (the chain's ISO code), bare without one."""
    frame = features.sort_values(id_column, kind="stable").reset_index(drop=True)
    ks = [k for k in k_range if 2 <= k < len(frame)]
    if not ks:
        raise TooFewCustomers(f"{len(frame)} rows cannot be split into any k in {k_range}")
    columns = _feature_columns(frame, id_column)
    raw = frame[columns].apply(pd.to_numeric, errors="coerce").astype(float)
    scaling = _scaling(raw, columns)
    standardised = scaling.zscores(raw)
    matrix = standardised * scaling.weights
    zscores = pd.DataFrame(standardised, columns=columns)

    sample = _silhouette_sample(len(frame), max_rows_for_silhouette, seed)
    choosing = _silhouette_sample(len(frame), max_rows_for_choosing_k, seed)
    # The sample's distances, once for every k (silhouette_samples would compute them again for
    # each): the same scores to the bit, at about half the cost; max_rows_for_silhouette bounds
    # the matrix (5,000 rows: 200 MB).
    distances = pairwise_distances(matrix[sample])

    def silhouettes(labels: np.ndarray) -> np.ndarray:
        return silhouette_samples(distances, labels[sample], metric="precomputed")

    fits = {}
    for k in ks:
        model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(matrix[choosing])
        labels = model.predict(matrix)
        scores = silhouettes(labels)
        fits[k] = (labels, scores, float(scores.mean()), model.cluster_centers_)
    # Highest silhouette; a tie goes to the smaller k (fewer segments to act on).
    k_chosen = max(ks, key=lambda k: (round(fits[k][2], 12), -k))
    labels, scores, silhouette, centers = fits[k_chosen]
    if len(choosing) < len(frame):
        # k was chosen on the sample; the clusters themselves are fitted on every guest.
        model = KMeans(n_clusters=k_chosen, n_init=n_init, random_state=seed).fit(matrix)
        labels, centers = model.labels_, model.cluster_centers_
        scores = silhouettes(labels)
        silhouette = float(scores.mean())
        fits[k_chosen] = (labels, scores, silhouette, centers)

    cluster_ids = _stable_ids(labels, matrix)
    ids = cluster_ids[labels]
    z_means = zscores.groupby(ids).mean()
    raw_means = raw.groupby(ids).mean()
    names = _names(z_means, columns)
    population = raw.mean()
    sizes = pd.Series(ids).value_counts()
    descriptions = {
        c: _description(
            int(sizes[c]),
            sizes[c] / len(frame),
            z_means.loc[c],
            raw_means.loc[c],
            population,
            currency,
        )
        for c in z_means.index
    }

    assignments = pd.DataFrame(
        {
            id_column: frame[id_column].to_numpy(),
            "cluster_id": ids.astype("int64"),
            "cluster_name": [names[c] for c in ids],
            "cluster_description": [descriptions[c] for c in ids],
        }
    )
    own_silhouette = pd.Series(scores).groupby(ids[sample]).mean()
    by_k = ", ".join(f"{k}: {fits[k][2]:.3f}" for k in ks)
    profiles = pd.DataFrame(
        {
            "cluster_id": z_means.index.astype("int64"),
            "cluster_name": [names[c] for c in z_means.index],
            "cluster_description": [descriptions[c] for c in z_means.index],
            "customers": [int(sizes[c]) for c in z_means.index],
            "share": [sizes[c] / len(frame) for c in z_means.index],
            "silhouette": silhouette,
            "cluster_silhouette": [float(own_silhouette.get(c, np.nan)) for c in z_means.index],
            "k_chosen": np.int64(k_chosen),
            "silhouette_by_k": by_k,
        }
    )
    for column in columns:
        profiles[f"mean_{column}"] = raw_means[column].to_numpy()
    profiles = profiles.sort_values("cluster_id").reset_index(drop=True)
    # Centroid of cluster id i in row i - 1: k-means' label l is cluster_ids[l] (a label no guest
    # took, which k-means avoids, has no cluster id).
    used = np.unique(labels)
    centroids = np.empty((len(used), centers.shape[1]))
    centroids[cluster_ids[used] - 1] = centers[used]
    return replace(scaling, centroids=centroids, profiles=profiles), assignments


def cluster_customers(
    features: pd.DataFrame, *, id_column: str = "customer_id", **fit_options
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """fit_clusters' assignments of `features` and the fit's profiles (one row per cluster with
    its size, share, the run's silhouette and k, the cluster's own silhouette, the silhouette per
    k tried, and `mean_<feature>`)."""
    fit, assignments = fit_clusters(features, id_column=id_column, **fit_options)
    return assignments, fit.profiles


def assign_clusters(
    features: pd.DataFrame, fit: ClusterFit, *, id_column: str = "customer_id"
) -> pd.DataFrame:
    """Every row of `features` in the cluster of the nearest centroid, by the fit's scaling (the
    fitted guests' own clusters, for the features they were fitted on), with the columns of
    ASSIGNED_FROM_FIT as fitted. A menu category the fit used and nobody in `features` bought is
    a share of 0 for all; any other column the fit used and `features` lacks is an error."""
    missing = [column for column in fit.columns if column not in features.columns]
    if any(not column.startswith(MENU_SHARE_PREFIX) for column in missing):
        raise KeyError(f"the features lack the fit's columns {missing}")
    frame = features.assign(**dict.fromkeys(missing, 0.0))
    frame = frame.sort_values(id_column, kind="stable").reset_index(drop=True)
    raw = frame[fit.columns].apply(pd.to_numeric, errors="coerce").astype(float)
    if frame.empty:
        ids = np.empty(0, dtype=np.int64)
    else:
        ids = pairwise_distances_argmin(fit.points(raw), fit.centroids) + 1
    assigned = pd.DataFrame({id_column: frame[id_column].to_numpy(), "cluster_id": ids})
    by_cluster = fit.profiles[["cluster_id", *ASSIGNED_FROM_FIT]]
    return assigned.merge(by_cluster, on="cluster_id", how="left", validate="many_to_one")


def features_digest(features: pd.DataFrame, settings: dict, id_column: str = "customer_id") -> str:
    """What a fit depends on: the features (whatever their row order), the fit's settings
    (k range, seed, currency...) and the fitting code. Equal digests, equal fits."""
    frame = features.sort_values(id_column, kind="stable").reset_index(drop=True)
    columns = [id_column, *_feature_columns(frame, id_column)]
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tobytes())
    digest.update(
        repr((sorted(settings.items()), columns, FIT_REVISION, sklearn.__version__)).encode()
    )
    return digest.hexdigest()[:32]


# The table a fit is kept in, one row per cluster (fit_to_frame), as DuckDB types it.
FIT_TABLE_DTYPES = {
    "cluster_id": "int64",
    "cluster_name": "string",
    "cluster_description": "string",
    "customers": "int64",
    "share": "float64",
    "silhouette": "float64",
    "cluster_silhouette": "float64",
    "k_chosen": "int64",
    "silhouette_by_k": "string",
    "centroid": "string",
    "feature_scaling": "string",
}


def fit_to_frame(fit: ClusterFit) -> pd.DataFrame:
    """One row per cluster: its profile (no means), its centroid and the fit's scaling as JSON
    (floats written as Python's repr, so fit_from_frame gives them back to the bit)."""
    scaling = json.dumps(
        {
            "columns": fit.columns,
            "log_columns": fit.log_columns,
            "fill": fit.fill.tolist(),
            "center": fit.center.tolist(),
            "scale": fit.scale.tolist(),
            "weights": fit.weights.tolist(),
        }
    )
    frame = fit.profiles[[c for c in FIT_TABLE_DTYPES if c in fit.profiles.columns]].copy()
    frame["centroid"] = [json.dumps(row.tolist()) for row in fit.centroids]
    frame["feature_scaling"] = scaling
    return frame.astype(FIT_TABLE_DTYPES)


def fit_from_frame(frame: pd.DataFrame) -> ClusterFit:
    """The fit fit_to_frame kept (its profiles without the means)."""
    frame = frame.sort_values("cluster_id").reset_index(drop=True)
    scaling = json.loads(frame["feature_scaling"].iloc[0])
    return ClusterFit(
        columns=scaling["columns"],
        log_columns=scaling["log_columns"],
        fill=np.array(scaling["fill"], dtype=float),
        center=np.array(scaling["center"], dtype=float),
        scale=np.array(scaling["scale"], dtype=float),
        weights=np.array(scaling["weights"], dtype=float),
        centroids=np.array([json.loads(c) for c in frame["centroid"]], dtype=float),
        profiles=frame.drop(columns=["centroid", "feature_scaling"]),
    )


def unfitted() -> pd.DataFrame:
    """The fit table with no rows, typed as a fit fills it."""
    return _empty(FIT_TABLE_DTYPES)


def fit_or_keep(
    features: pd.DataFrame,
    previous: pd.DataFrame | None,
    *,
    as_of_column: str = "as_of_date",
    id_column: str = "customer_id",
    **fit_options,
) -> pd.DataFrame:
    """The fit table for `features` (fit_to_frame's rows, with features_as_of, features_digest and
    parameters_reused): `previous`, the table as a build left it, when its digest is the one of
    these features and options, else a new fit (no rows when there are too few customers).
    Either way the frame is the one a new fit gives, parameters_reused aside."""
    digest = features_digest(features, fit_options, id_column)
    reusable = (
        previous is not None
        and not previous.empty
        and bool((previous["features_digest"] == digest).all())
    )
    if reusable:
        fitted = previous[list(FIT_TABLE_DTYPES)].astype(FIT_TABLE_DTYPES).sort_values("cluster_id")
    else:
        try:
            fit, _ = fit_clusters(features, id_column=id_column, **fit_options)
            fitted = fit_to_frame(fit)
        except TooFewCustomers:
            fitted = unfitted()
    # DuckDB reads a date back into pandas as a timestamp: a date again, fitted or kept.
    as_of = pd.to_datetime(features[as_of_column]).max() if not features.empty else pd.NaT
    fitted["features_as_of"] = pd.Series(
        [None if pd.isna(as_of) else as_of.date()] * len(fitted),
        index=fitted.index,
        dtype=pd.ArrowDtype(pa.date32()),
    )
    fitted["features_digest"] = pd.Series(digest, index=fitted.index, dtype="string")
    fitted["parameters_reused"] = pd.Series(reusable, index=fitted.index, dtype="bool")
    return fitted.reset_index(drop=True)


def _feature_columns(frame: pd.DataFrame, id_column: str) -> list[str]:
    known = [c for c in FEATURES if c in frame.columns]
    if known:
        return known + sorted(c for c in frame.columns if c.startswith(MENU_SHARE_PREFIX))
    return [
        c
        for c in frame.columns
        if c != id_column
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _scaling(raw: pd.DataFrame, columns: list[str]) -> ClusterFit:
    """The fit's scaling of `raw` (its centroids and profiles still empty): skewed columns
    log1p'd, a missing value set to its column's mean (0 for a column with none), then z-scores,
    each weighted by 1 / sqrt(its block's size)."""
    log_columns = [c for c in columns if (spec := feature(c)) is not None and spec.log]
    transformed = _log1p(raw, log_columns)
    fill = transformed.mean().fillna(0.0).to_numpy(float)
    scaler = StandardScaler().fit(
        transformed.fillna(dict(zip(columns, fill, strict=True))).to_numpy()
    )
    blocks = pd.Series([spec.block if (spec := feature(c)) else c for c in columns])
    weights = 1 / np.sqrt(blocks.map(blocks.value_counts()).to_numpy(float))
    return ClusterFit(
        columns=columns,
        log_columns=log_columns,
        fill=fill,
        center=scaler.mean_,
        scale=scaler.scale_,
        weights=weights,
        centroids=np.empty((0, len(columns))),
        profiles=pd.DataFrame(),
    )


def _log1p(raw: pd.DataFrame, log_columns: list[str]) -> pd.DataFrame:
    """`raw` with the skewed (money and count) columns log1p'd, negatives as 0."""
    transformed = raw.copy()
    for column in log_columns:
        transformed[column] = np.log1p(transformed[column].clip(lower=0))
    return transformed


def _silhouette_sample(rows: int, max_rows: int, seed: int) -> np.ndarray:
    if rows <= max_rows:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))


def _stable_ids(labels: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map k-means labels to ids 1..k: largest cluster first, ties by centroid coordinates."""
    keys = []
    for label in np.unique(labels):
        centroid = matrix[labels == label].mean(axis=0)
        keys.append((-int((labels == label).sum()), tuple(np.round(centroid, 9)), label))
    mapping = np.zeros(labels.max() + 1, dtype=np.int64)
    for cluster_id, (_, _, label) in enumerate(sorted(keys), start=1):
        mapping[label] = cluster_id
    return mapping


def _phrase(column: str, z: float) -> str:
    spec = feature(column)
    if spec is None:
        return f"{'high' if z > 0 else 'low'} {column.replace('_', ' ')}"
    return spec.high if z > 0 else spec.low


def _ranked(z_row: pd.Series) -> list[str]:
    """Features by how far the cluster mean sits from the population's (ties by name)."""
    return sorted(z_row.index, key=lambda c: (-round(abs(z_row[c]), 9), c))


def _names(z_means: pd.DataFrame, columns: list[str]) -> dict[int, str]:
    """Up to NAME_PHRASES phrases from the most distinguishing features (one per block), with more
    phrases where two clusters would otherwise share a name; unique within the run."""
    ranked = {c: _ranked(z_means.loc[c]) for c in z_means.index}

    def phrases(c: int, count: int) -> list[str]:
        out, blocks = [], set()
        for column in ranked[c]:
            block = spec.block if (spec := feature(column)) else column
            if block in blocks:
                continue
            if len(out) >= 1 and abs(z_means.loc[c, column]) < DISTINCT_Z:
                break
            blocks.add(block)
            out.append(_phrase(column, z_means.loc[c, column]))
            if len(out) == count:
                break
        return out

    def label(parts: list[str]) -> str:
        text = ", ".join(parts) if parts else "typical guests"
        return text[0].upper() + text[1:]

    names = {c: label(phrases(c, NAME_PHRASES)) for c in z_means.index}
    for count in range(NAME_PHRASES + 1, len(columns) + 1):
        clashes = pd.Series(names).duplicated(keep=False)
        if not clashes.any():
            break
        for c in clashes[clashes].index:
            names[c] = label(phrases(c, count))
    clashes = pd.Series(names).duplicated(keep=False)
    for c in clashes[clashes].index:
        names[c] = f"{names[c]} (cluster {c})"
    return names


def _fmt(value: float, column: str, currency: str | None) -> str:
    unit = spec.unit if (spec := feature(column)) else "number"
    if np.isnan(value):
        return "n/a"
    if unit == "share":
        return f"{value:.0%}"
    if unit == "money":
        return f"{currency} {value:,.0f}" if currency else f"{value:,.0f}"
    if unit == "days":
        return f"{value:.0f} days"
    if unit == "count":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _description(
    customers: int,
    share: float,
    z_row: pd.Series,
    means: pd.Series,
    population: pd.Series,
    currency: str | None,
) -> str:
    """'412 guests (24%). Versus all guests: orders 9.1 (all 3.8), ...' from the features that set
    the cluster apart most."""
    parts = []
    for column in _ranked(z_row)[:DESCRIPTION_FEATURES]:
        if parts and abs(z_row[column]) < DISTINCT_Z:
            break
        label = spec.label if (spec := feature(column)) else column.replace("_", " ")
        parts.append(
            f"{label} {_fmt(means[column], column, currency)} "
            f"(all {_fmt(population[column], column, currency)})"
        )
    return f"{customers} guests ({share:.0%}). Versus all guests: " + "; ".join(parts) + "."
