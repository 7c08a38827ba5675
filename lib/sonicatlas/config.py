"""Typed, validated job and cluster configuration: YAML files plus ``--set`` overrides.

Every option has a default here, so a job runs with no file at all; ``conf/*.yaml`` documents
the same defaults and is what users copy and edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sonicatlas.contract import FEATURES, METADATA, REQUIRED, VALID_RANGES, Range
from sonicatlas.errors import ConfigError

#: The clustering methods ``algorithm:`` and ``compare:`` accept
#: (built by :func:`sonicatlas.estimators.registry.make_method`).
METHOD_NAMES = ("kmeans", "minibatch", "gmm", "agglomerative", "dbscan", "hdbscan", "meanshift")
#: The map projections ``projections:`` accepts (:mod:`sonicatlas.modeling.projections`).
PROJECTION_NAMES = ("pca", "ica", "umap", "tsne")


class _Strict(BaseModel):
    # Unknown keys are typos in a YAML file; say so instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSConfig(_Strict):
    """Certificates for a ``tls://`` scheduler; encryption is then required on every link."""

    ca_file: str = Field(..., description="PEM file of the certificate authority that signed "
                         "the scheduler's and workers' certificates.")
    cert: str = Field(..., description="PEM certificate of this client.")
    key: str = Field(..., description="PEM private key of that certificate.")


class ClusterConfig(_Strict):
    """Where the job runs: a LocalCluster, a remote scheduler, or a cluster a factory builds."""

    scheduler: str | None = Field(
        None, description="Address of a running scheduler (tcp://host:8786, or tls://host:8786 "
        "with tls); none starts a LocalCluster.")
    tls: TLSConfig | None = Field(None, description="Certificates for a tls:// scheduler "
                                  "(conf/cluster/remote-tls.yaml).")
    factory: str | None = Field(
        None, description="A cluster class to build and use, as package.module.ClassName "
        "(dask_jobqueue.SLURMCluster, dask_kubernetes.operator.KubeCluster, "
        "dask_gateway.GatewayCluster, coiled.Cluster, distributed.LocalCluster, ...); the job "
        "connects to it, runs and closes it.", pattern=r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
    factory_options: dict[str, Any] = Field(default_factory=dict, description="Keyword "
                                            "arguments of the factory class.")
    no_workers_timeout: float = Field(
        300.0, gt=0, description="Seconds a run waits while the scheduler has no workers before "
        "it fails (it says so after a few seconds); watched from the client, so it holds for a "
        "remote scheduler too.")
    n_workers: int | None = Field(None, ge=1, description="LocalCluster workers; default: one "
                                  "per core, at most 8.")
    threads_per_worker: int = Field(1, ge=1)
    processes: bool = Field(True, description="LocalCluster workers as processes (True) or "
                            "threads of this process (False).")
    memory_limit: str = Field("auto", description="Per-worker memory limit for a LocalCluster.")
    dashboard_address: str = Field("127.0.0.1:8787", description="Where a LocalCluster serves "
                                   "its dashboard; port 0 picks a free one.")
    connect_timeout: float = Field(15.0, gt=0, description="Seconds to wait for a remote "
                                   "scheduler before giving up.")
    worker_saturation: Annotated[float, Field(gt=0)] | Literal["inf"] = Field(
        1.1, description="A LocalCluster scheduler's distributed.scheduler.worker-saturation "
        "(a remote scheduler keeps its own). 1.1, dask's default, hands partitions out as "
        "workers free up, which bounds what a worker reads ahead of the reductions and "
        "shuffles that consume it; inf hands every partition out up front "
        "(docs/benchmarks.md).")
    huge_pages: bool | Literal["auto"] = Field(
        "auto", description="Transparent huge pages for a LocalCluster's worker processes (a "
        "remote cluster's workers keep their own setting). auto: off on a virtual machine whose "
        "balloon device reports free memory to its host, where the first touch of a huge page "
        "costs several times that of small pages (docs/benchmarks.md); on elsewhere.")

    @model_validator(mode="after")
    def _one_way_to_a_cluster(self) -> ClusterConfig:
        if self.scheduler and self.factory:
            raise ValueError("set scheduler or factory, not both")
        if self.factory_options and not self.factory:
            raise ValueError("factory_options needs factory (package.module.ClassName)")
        if self.tls and not (self.scheduler or "").startswith("tls://"):
            raise ValueError("tls is for a tls:// scheduler; set scheduler: tls://host:port")
        return self


class ClusterSection(_Strict):
    """A config of the ``cluster`` section alone, for the commands that start a cluster but
    run no job (``generate``, ``ingest``): the same files and ``--set cluster.*`` keys."""

    cluster: ClusterConfig = ClusterConfig()


class KMeansConfig(_Strict):
    """Distributed Lloyd's KMeans, seeded from k-means++ on a sample."""

    max_iter: int = Field(300, ge=1)
    tol: float = Field(1e-4, ge=0, description="Relative tolerance, scaled by the mean feature "
                       "variance as scikit-learn does.")
    n_init: int = Field(10, ge=1, description="k-means++ restarts on the sample; the best "
                        "seeds the full fit.")
    init_sample_size: int = Field(100_000, ge=100)


class SweepConfig(_Strict):
    """``k: auto``: the range of k tried and how each k is scored (:mod:`~.evaluate.sweep`)."""

    k_min: int = Field(2, ge=2)
    k_max: int = Field(12, ge=2)
    silhouette_sample_size: int = Field(10_000, ge=100, description="Rows per silhouette "
                                        "sample (the silhouette is quadratic in them).")
    silhouette_samples: int = Field(3, ge=1, description="Samples per k: mean and spread.")
    stability_runs: int = Field(3, ge=2, description="Bootstrap refits per k compared with "
                                "adjusted Rand.")
    stability_sample_size: int = Field(10_000, ge=100)
    stability_threshold: float = Field(0.8, ge=0, le=1, description="Mean adjusted Rand "
                                       "below which a k is flagged unstable.")
    null_sample_size: int = Field(5_000, ge=100, description="Rows of the shuffled-feature "
                                  "null reference.")
    null_references: int = Field(5, ge=2, description="Shuffled copies whose mean log cost "
                                 "gives the gap statistic and its standard error.")
    gap_tolerance: float = Field(0.05, ge=0, lt=1, description="k: auto takes the smallest k "
                                 "whose gap is this close (a share) to the sweep's largest.")
    min_silhouette_gain: float = Field(0.02, ge=0, description="How far a k's silhouette must "
                                       "beat the shuffled null to count as structure.")

    @model_validator(mode="after")
    def _ordered(self) -> SweepConfig:
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) is below k_min ({self.k_min})")
        return self


class SummaryConfig(_Strict):
    """What goes under ``summary/`` besides the cluster profiles."""

    sample_rows: int = Field(20_000, ge=100, description="Tracks in summary/track_sample; "
                             "profile quartiles come from it.")
    representative_tracks: int = Field(5, ge=1, description="Tracks nearest each centroid.")
    silhouette_rows: int = Field(5_000, ge=100, description="Tracks of summary/track_sample "
                                 "scored in summary/silhouette (its cost grows with their "
                                 "square).")
    artist_clusters: bool = Field(True, description="summary/artist_clusters: one row per "
                                  "artist (needs artist_name).")
    album_popularity: bool = Field(True, description="summary/album_popularity (needs "
                                   "album_name and popularity).")


class MapConfig(_Strict):
    width: int = Field(900, ge=100)
    height: int = Field(700, ge=100)


class ClusteringConfig(_Strict):
    """How a job clusters its scaled matrix: k (or a sweep), the method, comparisons."""

    k: int | Literal["auto"] = Field(6, description="Number of clusters, or auto to choose "
                                     "it with a sweep (see sweep).")
    seed: int = 0
    engine: Literal["sonicatlas", "dask-ml"] = Field(
        "sonicatlas", description="What scales, projects and clusters the feature matrix: "
        "sonicatlas (the job's own estimators) or dask-ml (dask_ml's StandardScaler, PCA and "
        "KMeans; k: auto, algorithm and compare use the job's sweep and methods on its "
        "scaled matrix).")
    names: dict[int, str] = Field(default_factory=dict, description="Cluster names that "
                                  "replace the generated ones: {cluster id: name}.")
    algorithm: str = Field("kmeans", description="Method whose clusters the run writes: "
                           "kmeans, minibatch, gmm, agglomerative, dbscan, hdbscan, meanshift.")
    params: dict[str, Any] = Field(default_factory=dict, description="Settings of the "
                                   "algorithm, e.g. {eps: 0.8} for dbscan.")
    compare: tuple[str, ...] = Field((), description="Methods also fitted on the same matrix "
                                     "and scored in summary/method_comparison.")
    compare_params: dict[str, dict[str, Any]] = Field(default_factory=dict, description=""
                                                      "Settings per compared method.")
    kmeans: KMeansConfig = KMeansConfig()
    sweep: SweepConfig = SweepConfig()
    map: MapConfig = MapConfig()
    cluster: ClusterConfig = ClusterConfig()

    @field_validator("k", mode="before")
    @classmethod
    def _k_or_auto(cls, value):
        # One plain message instead of one per member of the int | "auto" union.
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                               and value >= 1):
            return value
        raise ValueError(f"k must be a whole number of clusters (1 or more) or auto, "
                         f"got {value!r}")

    @property
    def largest_k(self) -> int:
        """The most clusters this run may fit: k, or the top of the sweep."""
        return self.sweep.k_max if self.k == "auto" else self.k

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        if value not in METHOD_NAMES:
            raise ValueError(f"unknown algorithm {value!r}; choose from {list(METHOD_NAMES)}")
        return value

    @field_validator("compare")
    @classmethod
    def _known_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in METHOD_NAMES]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHOD_NAMES)}")
        return value



class ClusterTracksConfig(ClusteringConfig):
    """Configuration of the cluster-tracks job."""

    input: str | None = Field(None, description="Parquet catalog: a directory, glob or fsspec "
                              "URL. None uses the built-in sample.")
    storage_options: dict[str, Any] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict, description="The input's column "
                                    "names mapped onto the contract: {their_name: contract_name}.")
    features: tuple[str, ...] = FEATURES
    bounds: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Valid [low, high] of a feature, replacing the "
        "contract's, e.g. {duration_ms: [0, 3600000]}; rows outside are rejected.")
    carry: tuple[str, ...] | None = Field(None, description="Metadata columns carried into "
                                          "assignments; None carries every contract metadata "
                                          "column present.")
    carry_reading: Literal["auto", "hold", "reread"] = Field(
        "auto", description="hold: the carried columns are read with the features and held in "
        "memory until the tables are written; reread: they are read again, partition by "
        "partition, when the tables are written, and never held (a catalog larger than the "
        "workers' memory then needs no spill), and neither are the ids (repeats are found by "
        "their hashes) nor a scaled copy of the features (scaled again on each KMeans pass); "
        "auto: reread when the catalog would take more than a third of the workers' memory "
        "limits.")
    summary: SummaryConfig = SummaryConfig()
    sample_rows: int = Field(200_000, ge=1000, description="Rows of the built-in sample made "
                             "on first use.")
    projections: tuple[str, ...] = Field(
        ("pca",), description="Map projections of every track: pca (exact, always made), ica, "
        "umap, tsne; each other one adds <name>1, <name>2 to assignments and "
        "maps/clusters_<name>.png. umap and tsne need pip install sonicatlas[projections].")
    projection_sample: int = Field(100_000, ge=100, description="Tracks ica, umap and tsne "
                                   "are fitted on (stratified by cluster); every other track "
                                   "is placed by the fitted projection on the workers.")
    projection_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings per projection, passed to FastICA, "
        "umap.UMAP or openTSNE.TSNE, e.g. {umap: {n_neighbors: 30}}.")

    @field_validator("projections")
    @classmethod
    def _known_projections(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p not in PROJECTION_NAMES]
        if unknown:
            raise ValueError(f"unknown projections {unknown}; choose from "
                             f"{list(PROJECTION_NAMES)}")
        if "pca" not in value:
            raise ValueError("pca is always made (the run's maps and pc1, pc2); list it, "
                             f"e.g. [pca, {', '.join(value) or 'umap'}]")
        if len(set(value)) != len(value):
            raise ValueError(f"projections lists a name twice: {list(value)}")
        return value

    @model_validator(mode="after")
    def _params_of_listed_projections(self) -> ClusterTracksConfig:
        stray = sorted(set(self.projection_params) - (set(self.projections) - {"pca"}))
        if stray:
            raise ValueError(f"projection_params names {stray}: settings are for ica, umap "
                             f"or tsne when listed in projections ({list(self.projections)})")
        return self

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown}; choose from {list(FEATURES)}")
        if len(value) < 2:
            raise ValueError("at least two features are needed")
        return value

    @field_validator("bounds")
    @classmethod
    def _feature_bounds(cls, value: dict[str, tuple[float, float]]
                        ) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if name not in FEATURES:
                raise ValueError(f"bounds names {name!r}, not a feature; features are "
                                 f"{list(FEATURES)}")
            if not low < high:
                raise ValueError(f"bounds.{name}: low {low} must be below high {high}")
        return value

    def valid_ranges(self) -> dict[str, Range]:
        """Each feature's valid range: the contract's, with ``bounds`` in place of its ends."""
        return {name: Range(*self.bounds[name], VALID_RANGES[name].low_inclusive,
                            VALID_RANGES[name].high_inclusive) if name in self.bounds
                else VALID_RANGES[name] for name in FEATURES}

    @field_validator("columns")
    @classmethod
    def _targets_in_contract(cls, value: dict[str, str]) -> dict[str, str]:
        contract = set(REQUIRED) | set(METADATA)
        unknown = sorted(t for t in value.values() if t not in contract)
        if unknown:
            raise ValueError(f"columns maps onto {unknown}, which the contract does not have; "
                             f"targets are {sorted(contract)}")
        return value


class SegmentListenersConfig(ClusteringConfig):
    """Configuration of the segment-listeners job."""

    listens: str = Field(..., description="Parquet listening log: user_id, track_id, ts and "
                         "ms_played or play_count.")
    users: str | None = Field(None, description="Optional Parquet users table (user_id and "
                              "attributes such as country, subscription) carried into "
                              "assignments.")
    tracks_run: str = Field(..., description="A cluster-tracks run directory: its tracks' "
                            "clusters and its input catalog's features are joined in.")
    storage_options: dict[str, Any] = Field(default_factory=dict)
    now: str | None = Field(None, description="Reference time for recency and future "
                            "timestamps (ISO 8601); default: the log's latest listen.")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into its key path and a YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def _apply(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = tree.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(path)}: {part!r} is not a section")
        tree = node
    tree[path[-1]] = value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(tree, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return tree


def load_config(model: type[BaseModel], paths: str | Path | list | tuple | None = None,
                overrides: list[str] = ()) -> BaseModel:
    """Build a validated config from YAML files and ``key=value`` overrides.

    Parameters
    ----------
    model : pydantic model class
        The job's configuration class.
    paths : path or list of paths, optional
        YAML files, merged in order (later keys win, sections merge); missing keys take the
        model's defaults.
    overrides : list of str
        ``a.b=value`` strings applied after the files; values are parsed as YAML.

    Returns
    -------
    An instance of ``model``.

    Raises
    ------
    ConfigError
        A file is missing or unreadable, or a value is invalid; the message names the key.
    """
    paths = [] if paths is None else [paths] if isinstance(paths, (str, Path)) else list(paths)
    tree: dict[str, Any] = {}
    for path in paths:
        tree = _merge(tree, _read_yaml(path))
    for text in overrides:
        _apply(tree, *parse_override(text))
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors())
        where = f" in {', '.join(map(str, paths))}" if paths else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc
