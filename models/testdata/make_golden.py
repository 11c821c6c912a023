#!/usr/bin/python3
"""Writes the golden models, rows and predictions that models/ tests against.

Run with Debian's interpreter, which has xgboost 1.7 and scikit-learn 1.2:

    /usr/bin/python3 models/testdata/make_golden.py [OUTDIR]

OUTDIR defaults to the directory of this script. Every random draw comes from
a seeded generator and XGBoost trains on one thread, so a rerun on the same
library versions writes the same files. The Go tests read the committed
files; TestGoldenRegenerated reruns this script into a temporary directory
and checks that the Go scorers agree with the freshly written predictions.

Files written:
  xgb_binary.json          binary:logistic, 100 trees of depth 6, base_score 0.35
  xgb_binary.leaves.model  the same model in the old binary layout that
                           github.com/dmitryikh/leaves reads (benchmarks only)
  xgb_regression.json      reg:squarederror, 20 trees of depth 4
  xgb_rank.json            rank:pairwise, 20 trees of depth 4, no feature names
  xgb_rows.jsonl           rows with XGBoost's predictions for the three models
  xgb_binary_contribs.jsonl  XGBoost's approximate (Saabas) contributions for
                           the first rows of xgb_rows.jsonl
  logistic_spec.json       a scikit-learn LogisticRegression pipeline written
                           as a Touchpoint logistic spec
  logistic_rows.jsonl      rows with the pipeline's predict_proba

A rows file starts with {"columns": [...], "outputs": [...]} and then has
one {"x": [...], "y": [...]} per row: x in column order, null for a missing
value; y the library's outputs, float32 results in their shortest float32
form. The rank model has no feature names: its inputs f0..f9 are the
columns in order.
"""

import json
import os
import struct
import sys

import numpy as np
import sklearn
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, KBinsDiscretizer,
                                   OneHotEncoder, StandardScaler)

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))

FEATURES = [
    "ltv", "churn_risk", "sessions_30d", "days_since_purchase", "avg_order_value",
    "email_open_rate", "tenure_months", "cart_items", "discount_affinity", "support_tickets",
]
TYPES = ["float", "q", "int", "int", "float", "q", "int", "int", "float", "int"]
# The regression model declares one indicator column, which XGBoost treats
# as a number like the others.
REG_TYPES = TYPES[:-1] + ["i"]
MISSING_RATE = 0.1


def features(rng, n):
    """Customer-like columns, rounded so that many rows share values (and so
    land exactly on split conditions), with about 10% missing."""
    cols = [
        np.round(rng.lognormal(5, 1.2, n), 2),
        np.round(rng.uniform(0, 1, n), 3),
        rng.poisson(5, n).astype(float),
        rng.integers(0, 366, n).astype(float),
        np.round(rng.gamma(2, 30, n), 2),
        np.round(rng.beta(2, 5, n), 3),
        rng.integers(0, 121, n).astype(float),
        rng.integers(0, 11, n).astype(float),
        np.round(rng.normal(0, 1, n), 3),
        rng.poisson(0.5, n).astype(float),
    ]
    X = np.column_stack(cols)
    X[rng.random(X.shape) < MISSING_RATE] = np.nan
    return X


def labels(rng, X):
    Z = np.nan_to_num(X, nan=0.0)
    score = (0.9 * np.log1p(Z[:, 0]) / 5 - 2.2 * Z[:, 1] + 0.12 * Z[:, 2]
             - 0.004 * Z[:, 3] + 0.006 * Z[:, 4] + 1.5 * Z[:, 5]
             + 0.01 * Z[:, 6] + 0.2 * (Z[:, 7] > 3) + 0.4 * Z[:, 8] * Z[:, 1]
             - 0.3 * Z[:, 9] + np.where(np.isnan(X[:, 1]), 0.5, 0.0))
    noise = rng.normal(0, 0.8, len(X))
    binary = (score + noise > np.median(score)).astype(float)
    regression = score + 0.3 * noise
    relevance = np.clip(np.floor((score + noise - score.min()) / 1.2), 0, 4)
    return binary, regression, relevance


def train_xgb(X, y, objective, rounds, depth, names=None, types=None, group=None, **extra):
    d = xgb.DMatrix(X, label=y, feature_names=names, feature_types=types)
    if group is not None:
        d.set_group(group)
    params = {
        "objective": objective, "max_depth": depth, "eta": 0.1, "tree_method": "hist",
        "seed": 7, "nthread": 1, "min_child_weight": 10, "subsample": 0.9,
    }
    params.update(extra)
    return xgb.train(params, d, rounds)


def split_conditions(path):
    """(feature index, split condition) of every split in an XGBoost JSON model."""
    with open(path) as f:
        model = json.load(f)
    out = []
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        for left, feat, cond in zip(tree["left_children"], tree["split_indices"], tree["split_conditions"]):
            if left != -1:
                out.append((feat, float(np.float32(cond))))
    return out


def boundary_rows(rng, base, splits, n):
    """Rows whose values sit on XGBoost's float32 split conditions, one float32
    step either side, or a float64 hair above them that rounds back onto the
    condition in float32: where < and <=, or float32 and float64, disagree."""
    rows = base[rng.integers(0, len(base), n)].copy()
    for r in range(n):
        for _ in range(4):
            feat, cond = splits[rng.integers(0, len(splits))]
            c32 = np.float32(cond)
            kind = rng.integers(0, 4)
            if kind == 0:
                v = float(c32)
            elif kind == 1:
                v = float(np.nextafter(c32, np.float32(np.inf)))
            elif kind == 2:
                v = float(np.nextafter(c32, np.float32(-np.inf)))
            else:
                ulp = float(np.spacing(c32))
                v = float(c32) + ulp * 0.25
                assert np.float32(v) == c32
            rows[r, feat] = v
    return rows


def num(v):
    """A value for the rows files: null when missing, an integer when it is
    one (shorter), else Python's shortest float64 repr, which Go parses back
    to the same float64."""
    v = float(v)
    if np.isnan(v):
        return None
    if v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


class F32:
    """A float32 result, written in numpy's shortest float32 repr: the tests
    parse it with strconv.ParseFloat(s, 32), which gives back the float32."""

    def __init__(self, v):
        self.text = repr(np.float32(v))


def dumps(value):
    if isinstance(value, F32):
        return value.text
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dumps(v) for k, v in value.items()) + "}"
    return json.dumps(value)


def write_jsonl(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(dumps(r) + "\n")


def leaves_binary(path_in, path_out):
    """XGBoost 1.7 writes its binary model with a "binf" magic, base_score as a
    probability and num_output_group left at 0. leaves reads the older layout:
    no magic, base_score already a margin, num_output_group set. Patch those
    three things and nothing else."""
    b = bytearray(open(path_in, "rb").read())
    assert b[:4] == b"binf"
    b = b[4:]
    base = np.float32(struct.unpack_from("<f", b, 0)[0])
    margin = np.float32(-np.log(np.float32(1) / base - np.float32(1)))
    struct.pack_into("<f", b, 0, float(margin))
    off = 136  # LearnerModelParam
    for _ in range(2):  # objective and booster names
        n = struct.unpack_from("<Q", b, off)[0]
        off += 8 + n
    # GBTreeModelParam: num_trees, num_parallel_tree, num_feature, pad,
    # num_pbuffer (int64), then num_output_group.
    struct.pack_into("<i", b, off + 24, 1)
    with open(path_out, "wb") as f:
        f.write(bytes(b))


def make_xgboost():
    rng = np.random.default_rng(20240611)
    X = features(rng, 2000)
    yb, yr, yk = labels(rng, X)

    binary = train_xgb(X, yb, "binary:logistic", 100, 6, FEATURES, TYPES, base_score=0.35)
    binary.save_model(os.path.join(OUT, "xgb_binary.json"))
    if xgb.__version__.startswith("1."):
        # Later versions drop the old binary format that leaves builds on.
        legacy = os.path.join(OUT, "xgb_binary.legacy.model")
        binary.save_model(legacy)
        leaves_binary(legacy, os.path.join(OUT, "xgb_binary.leaves.model"))
        os.remove(legacy)

    regression = train_xgb(X, yr, "reg:squarederror", 20, 4, FEATURES, REG_TYPES)
    regression.save_model(os.path.join(OUT, "xgb_regression.json"))

    rank = train_xgb(X, yk, "rank:pairwise", 20, 4, group=[10] * (len(X) // 10))
    rank.save_model(os.path.join(OUT, "xgb_rank.json"))

    rows = features(rng, 1000)
    splits = split_conditions(os.path.join(OUT, "xgb_binary.json"))
    rows = np.vstack([rows, boundary_rows(rng, rows, splits, 200)])

    named = xgb.DMatrix(rows, feature_names=FEATURES, feature_types=TYPES)
    p_binary = binary.predict(named)
    m_binary = binary.predict(named, output_margin=True)
    p_reg = regression.predict(xgb.DMatrix(rows, feature_names=FEATURES, feature_types=REG_TYPES))
    p_rank = rank.predict(xgb.DMatrix(rows))
    contribs = binary.predict(named, pred_contribs=True, approx_contribs=True)

    records = [{"columns": FEATURES, "outputs": ["binary", "binary_margin", "regression", "rank"]}]
    for i in range(len(rows)):
        records.append({
            "x": [num(v) for v in rows[i]],
            "y": [F32(p_binary[i]), F32(m_binary[i]), F32(p_reg[i]), F32(p_rank[i])],
        })
    write_jsonl(os.path.join(OUT, "xgb_rows.jsonl"), records)
    # The last column is the bias.
    write_jsonl(os.path.join(OUT, "xgb_binary_contribs.jsonl"),
                [[F32(v) for v in contribs[i]] for i in range(200)])


SEGMENTS = ["gold", "silver", "bronze", "new"]


def logistic_data(rng, n, unknown=False):
    ltv = np.round(rng.lognormal(5, 1.0, n), 2)
    churn = np.round(rng.uniform(0, 1, n), 3)
    sessions = rng.poisson(4, n).astype(float)
    tenure = rng.integers(0, 121, n).astype(float)
    seg_pool = SEGMENTS + (["platinum", "diamond"] if unknown else [])
    segment = np.array(rng.choice(seg_pool, n), dtype=object)
    for col in (ltv, churn, sessions, tenure):
        col[rng.random(n) < MISSING_RATE] = np.nan
    segment[rng.random(n) < MISSING_RATE] = None
    Z = np.nan_to_num
    score = (0.5 * np.log1p(Z(ltv)) - 2.0 * Z(churn) + 0.3 * np.log1p(Z(sessions))
             + 0.015 * Z(tenure) + np.array([{"gold": 0.8, "silver": 0.3, "bronze": -0.2}.get(s, 0.0) for s in segment]))
    y = (score + rng.normal(0, 0.7, n) > np.median(score)).astype(int)
    cols = {"ltv": ltv, "churn_risk": churn, "sessions_30d": sessions, "tenure_months": tenure, "segment": segment}
    return cols, y


class NaNBuckets(KBinsDiscretizer):
    """KBinsDiscretizer's one-hot buckets, with a missing value in no bucket
    (an all-zero row), which the Touchpoint spec gives a contribution of 0."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        super().fit(X[~np.isnan(X[:, 0])])
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        missing = np.isnan(X[:, 0])
        out = np.asarray(super().transform(np.where(np.isnan(X), 0.0, X)), dtype=float)
        out[missing] = 0.0
        return out


def make_logistic():
    rng = np.random.default_rng(8675309)
    train, y = logistic_data(rng, 4000)

    def frame(cols):
        # ColumnTransformer wants a 2-D array; keep one column per feature
        # (object dtype so that strings and numbers can share it).
        return np.column_stack([cols[k] for k in ("ltv", "churn_risk", "sessions_30d", "tenure_months", "segment")])

    def to_float():
        return FunctionTransformer(lambda X: np.asarray(X, dtype=float))

    numeric = Pipeline([("float", to_float()), ("impute", SimpleImputer(strategy="mean")),
                        ("scale", StandardScaler())])
    logged = Pipeline([("float", to_float()), ("log1p", FunctionTransformer(np.log1p)),
                       ("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())])
    onehot = Pipeline([("fill", SimpleImputer(strategy="constant", fill_value="__missing__", missing_values=None)),
                       ("onehot", OneHotEncoder(categories=[SEGMENTS], handle_unknown="ignore"))])
    buckets = NaNBuckets(n_bins=5, encode="onehot-dense", strategy="quantile")
    pre = ColumnTransformer([
        ("num", numeric, [0, 1]),
        ("log", logged, [2]),
        ("bucket", buckets, [3]),
        ("cat", onehot, [4]),
    ])
    pipe = Pipeline([("pre", pre), ("lr", LogisticRegression(C=1.0, max_iter=2000))])
    pipe.fit(frame(train), y)

    coef = pipe.named_steps["lr"].coef_[0]
    pre = pipe.named_steps["pre"]
    scaled = pre.named_transformers_["num"].named_steps["scale"]
    log = pre.named_transformers_["log"].named_steps["scale"]
    bins = pre.named_transformers_["bucket"]
    edges = bins.bin_edges_[0]
    nb = len(edges) - 1
    terms = [
        {"input": "ltv", "weight": float(coef[0]), "mean": float(scaled.mean_[0]), "std": float(scaled.scale_[0])},
        {"input": "churn_risk", "weight": float(coef[1]), "mean": float(scaled.mean_[1]), "std": float(scaled.scale_[1])},
        {"input": "sessions_30d", "weight": float(coef[2]), "log1p": True, "mean": float(log.mean_[0]),
         "std": float(log.scale_[0])},
        {"input": "tenure_months", "buckets": {"bounds": [float(v) for v in edges[1:-1]],
                                               "weights": [float(v) for v in coef[3:3 + nb]]}},
        {"input": "segment", "one_hot": {s: float(coef[3 + nb + i]) for i, s in enumerate(SEGMENTS)}},
    ]
    spec = {"intercept": float(pipe.named_steps["lr"].intercept_[0]), "terms": terms}
    with open(os.path.join(OUT, "logistic_spec.json"), "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")

    test, _ = logistic_data(rng, 1000, unknown=True)
    Xtest = frame(test)
    p = pipe.predict_proba(Xtest)[:, 1]
    names = ["ltv", "churn_risk", "sessions_30d", "tenure_months", "segment"]
    records = [{"columns": names, "outputs": ["prediction"]}]
    for i in range(len(Xtest)):
        x = [v if isinstance(v, str) or v is None else num(v) for v in Xtest[i]]
        records.append({"x": x, "y": [float(p[i])]})
    write_jsonl(os.path.join(OUT, "logistic_rows.jsonl"), records)


def main():
    os.makedirs(OUT, exist_ok=True)
    make_xgboost()
    make_logistic()
    print("xgboost", xgb.__version__, "scikit-learn", sklearn.__version__, "->", OUT)


if __name__ == "__main__":
    main()
