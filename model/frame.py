"""Local metric frame of a pair of polygons.

Every pair (A, B) is measured in its own **oblique ellipsoidal Lambert azimuthal
equal-area (LAEA) projection on WGS84**, centred on the pair (Snyder, *Map
Projections - A Working Manual*, USGS PP 1395, pp. 182-190, with the ``D``
factor so that scale is true at the centre in both directions).  Because the
projection is equal-area, areas in the frame are ellipsoidal areas (to ~1e-9
relative for features tens of km across); because scale is true at the
centre, lengths near the pair are metres.

pyproj cannot vectorise over a different projection centre per pair, so the
pipeline is:

1. :func:`layer_to_lonlat` - one pyproj ``Transformer`` per layer
   (layer CRS -> WGS84 lon/lat degrees, ``always_xy``) on all vertices at once;
2. :func:`project_pairs` - our own NumPy LAEA (:mod:`.laea`) with per-vertex centre
   parameters, then validity repair *in the frame*.

The projection works with sin/cos of (lon - lon0), so a polygon crossing the
antimeridian in lon/lat (vertex longitudes 179.9 and -179.9) becomes a small,
correct polygon in the frame - which is why validity repair happens after
projection.

Limitations
-----------
* Edges are straight lines in the frame.  Long edges in lon/lat (e.g. a
  parallel spanning many degrees) are not densified; for the features this
  plugin compares (metres to tens of km) the difference from geodesic edges
  is negligible.
* A polygon that contains a pole may come the usual way in lon/lat (a ring
  cut along the antimeridian that runs up to the pole) or as a ring that
  winds once round the pole (as from a polar CRS); both come out correct in
  a frame centred near the pole, because every lon/lat vertex at latitude
  +-90 maps to the same point (:mod:`.candidates` gives such rings the whole
  polar cap as their box).
* The frame is only meant for the neighbourhood of the pair: points more than
  a few thousand km from the centre are distorted in shape (never in area)
  and the antipode of the centre is singular. So a pair holding a *spread*
  feature (one reaching more than :data:`SPREAD_DEGREES` from its centre, as
  Norway with Bouvet Island) is measured only on what can meet: the parts of
  each feature that come within reach of the other, in a frame centred on
  them; its coverages and IoU use the whole feature's area, computed once per
  feature (:attr:`LonLatLayer.true_area`). A single polygon part reaching
  round the globe (a whole-world box) is not yet cut to the pair.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyproj
import shapely

from .candidates import spans_every_longitude
from .laea import (
    AUTHALIC_RADIUS_M,
    CentreParams,
    authalic_sin_cos,
    forward_from_trig,
    forward_with_params,
    inverse_with_params,
    laea_forward,
)

__all__ = [
    "MissingCrsError",
    "InvalidCrsError",
    "NonPolygonalGeometryError",
    "LonLatLayer",
    "PairFrames",
    "layer_to_lonlat",
    "project_pairs",
    "geometry_unit_centres",
    "repair_polygonal",
]


class MissingCrsError(ValueError):
    """The layer has no coordinate reference system (None or empty)."""


class InvalidCrsError(ValueError):
    """The layer's CRS cannot be interpreted or transformed to WGS84."""


class NonPolygonalGeometryError(ValueError):
    """The layer holds geometries that are not (multi)polygons."""


# --------------------------------------------------------------------------
# Layer -> lon/lat with a validity report.
# --------------------------------------------------------------------------
_POLYGON = shapely.GeometryType.POLYGON
_MULTIPOLYGON = shapely.GeometryType.MULTIPOLYGON
_COLLECTION = shapely.GeometryType.GEOMETRYCOLLECTION
_MULTI_TYPES = (
    shapely.GeometryType.MULTIPOINT,
    shapely.GeometryType.MULTILINESTRING,
    _MULTIPOLYGON,
    _COLLECTION,
)


def _as_geometry_array(geoms):
    """Any sequence of shapely geometries / None -> 1-D object array (a new array)."""
    if isinstance(geoms, np.ndarray) and geoms.dtype == object:
        return geoms.reshape(-1).copy()
    items = list(geoms)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _polygonal_parts_of_collections(collections):
    """Polygonal part of each GeometryCollection as a MultiPolygon (n,), or None if it has none.

    Flattens nested collections/multis level by level (a loop over nesting
    depth, not over geometries).
    """
    parts, owner = shapely.get_parts(collections, return_index=True)
    while parts.size:
        is_multi = np.isin(shapely.get_type_id(parts), _MULTI_TYPES)
        if not is_multi.any():
            break
        sub_parts, sub_owner = shapely.get_parts(parts[is_multi], return_index=True)
        parts = np.concatenate([parts[~is_multi], sub_parts])
        owner = np.concatenate([owner[~is_multi], owner[is_multi][sub_owner]])
    keep = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    parts, owner = parts[keep], owner[keep]
    order = np.argsort(owner, kind="stable")  # shapely wants increasing indices
    out = np.full(len(collections), None, dtype=object)
    if parts.size:
        shapely.multipolygons(parts[order], indices=owner[order], out=out)
    return out


def _nonfinite_geometry_mask(geoms):
    """(n,) bool: lon/lat geometry has a NaN/inf coordinate or a latitude beyond +-90 degrees (off the globe)."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    with np.errstate(invalid="ignore"):
        bad_vertex = ~np.isfinite(coords).all(axis=1) | (np.abs(coords[:, 1]) > 90.0)
    return np.bincount(owner[bad_vertex], minlength=len(geoms)) > 0


def _wrap_longitudes(geoms):
    """Longitudes beyond +-180 degrees (0..360 data, say) brought into [-180, 180], in place.

    Only geometries with such a vertex are touched, and in them only those vertices, so a
    ring that runs along +-180 exactly (a polar cap cut at the antimeridian) keeps its shape;
    a ring that crossed 180 in 0..360 longitudes becomes the usual antimeridian-crossing ring.
    """
    bounds = shapely.bounds(geoms)  # NaN for None: never beyond
    beyond = (bounds[:, 0] < -180.0) | (bounds[:, 2] > 180.0)
    if not beyond.any():
        return
    coords = shapely.get_coordinates(geoms[beyond])
    lon = coords[:, 0]
    outside = np.abs(lon) > 180.0
    lon[outside] = np.remainder(lon[outside] + 180.0, 360.0) - 180.0
    geoms[beyond] = shapely.set_coordinates(geoms[beyond].copy(), coords)


def _has_z_or_m(geoms):
    """(n,) bool: the geometry has Z or M values (M only where shapely knows it, >= 2.1)."""
    has = shapely.has_z(geoms)
    try:
        return has | shapely.has_m(geoms)
    except (AttributeError, shapely.errors.UnsupportedGEOSVersionError):  # cannot tell: assume M
        return np.ones_like(has)


def _to_pyproj_crs(crs):
    if isinstance(crs, str):  # numpy.str_ too: pyproj 3.4 misreads it ("EPSG:EPSG:...")
        crs = str(crs)
    if crs is None or (isinstance(crs, str) and not crs.strip()):
        raise MissingCrsError(
            "The layer has no coordinate reference system; set its CRS before measuring overlaps."
        )
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise InvalidCrsError(f"Cannot interpret the layer CRS {crs!r}: {exc}") from exc


_WGS84_LONLAT = pyproj.CRS.from_epsg(4326)


@dataclass
class LonLatLayer:
    """A layer converted to WGS84 longitude/latitude (degrees, x = lon).

    Attributes (n = number of input features):
      geoms: (n,) object array of 2-D Polygon/MultiPolygon in lon/lat degrees,
        None where the feature is unusable (see the masks).  Not yet repaired:
        validity is fixed later, in the metric frame.
      missing: (n,) bool, the input was None or empty.
      nonfinite: (n,) bool, a coordinate was NaN/inf, or a latitude beyond +-90
        degrees (off the globe), in the input or after the
        transform (e.g. outside the CRS's domain).
      crs: the source pyproj CRS; transformation: description of the pyproj
        operation used ("" when the input already was WGS84 lon/lat).
      full_detail, detail_error: set by :func:`.preparation.prepare_layer` on a model layer: the
        same layer repaired but not simplified (None when nothing was simplified), and (n,)
        metres within which each model geometry lies of its full-detail one (0: the same).
    """

    geoms: np.ndarray
    missing: np.ndarray
    nonfinite: np.ndarray
    crs: pyproj.CRS
    transformation: str = ""
    full_detail: "LonLatLayer" = None
    detail_error: np.ndarray = None

    def __len__(self):
        return len(self.geoms)

    @property
    def n_missing(self) -> int:
        return int(self.missing.sum())

    @property
    def n_nonfinite(self) -> int:
        return int(self.nonfinite.sum())

    @property
    def usable(self) -> np.ndarray:
        """(n,) bool: features with a geometry to measure (no feature is left out for its size or spread)."""
        return ~(self.missing | self.nonfinite)

    @cached_property
    def unit_centres(self) -> np.ndarray:
        """(n, 3) unit vectors of each feature's centre (see :func:`geometry_unit_centres`), cached."""
        return geometry_unit_centres(self.geoms)

    @cached_property
    def radii(self) -> np.ndarray:
        """(n,) radians from each feature's centre to its furthest vertex (an upper bound for small ones)."""
        return _angular_radii(self.geoms, self.unit_centres, limit_degrees=SPREAD_DEGREES / 2.0)

    @cached_property
    def spread(self) -> np.ndarray:
        """(n,) bool: the feature reaches more than SPREAD_DEGREES from its centre (measured by its parts)."""
        return self.radii > np.deg2rad(SPREAD_DEGREES)

    @cached_property
    def spread_parts(self) -> "_SpreadParts":
        """The polygon parts of the spread features, with their caps (cached)."""
        return _SpreadParts.of(self.geoms, self.spread)

    @cached_property
    def true_area(self) -> np.ndarray:
        """(n,) m², the whole area of each spread feature (each part measured in its own frame); NaN elsewhere."""
        parts = self.spread_parts
        return _true_areas(parts.parts, parts.owner, len(self.geoms), parts.radii)

    @cached_property
    def long_edges(self) -> np.ndarray:
        """(n,) bool: the feature has an edge longer than LONG_EDGE_M, which frames bend differently."""
        return _long_edge_mask(self.geoms)

    @cached_property
    def own_frames(self) -> "_OwnFrames":
        """The features with many vertices projected once into a frame centred on each (cached)."""
        return _OwnFrames.of(self.geoms, self.unit_centres, self.vertex_trig)

    @cached_property
    def vertex_trig(self) -> "_VertexTrig":
        """Per-vertex trigonometry of the features with many vertices (see :class:`_VertexTrig`), cached."""
        return _VertexTrig.of(self.geoms)


def layer_to_lonlat(geoms, crs) -> LonLatLayer:
    """Convert one layer's polygons to WGS84 lon/lat degrees with a validity report.

    Parameters
    ----------
    geoms : (n,) sequence of shapely geometries or None.
    crs : anything ``pyproj.CRS.from_user_input`` accepts (EPSG int or
        "EPSG:xxxx", WKT, PROJ string, pyproj.CRS).  Coordinates are taken in
        (x, y) = (easting, northing) or (lon, lat) order whatever the CRS's
        official axis order (GIS convention, pyproj ``always_xy``).

    Returns
    -------
    LonLatLayer with geometries of the same length n.

    * None/empty geometries -> None, flagged in ``missing``;
    * Z/M are dropped;
    * GeometryCollections keep their polygonal parts (as a MultiPolygon);
    * features with non-finite coordinates or latitudes beyond +-90 degrees
      (input or after the transform) -> None, flagged in ``nonfinite``;
    * longitudes beyond +-180 degrees are wrapped into [-180, 180];
    * features spread over the globe are kept (pairs measure the parts within reach,
      see :func:`project_pairs`).

    Raises
    ------
    MissingCrsError : ``crs`` is None or empty.
    InvalidCrsError : the CRS cannot be read or transformed to WGS84.
    NonPolygonalGeometryError : points, lines, or collections without polygons.
    """
    source_crs = _to_pyproj_crs(crs)
    geoms = _as_geometry_array(geoms)
    n = len(geoms)

    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    geoms[missing] = None
    type_id = shapely.get_type_id(geoms)

    collection = type_id == _COLLECTION
    if collection.any():
        geoms[collection] = _polygonal_parts_of_collections(geoms[collection])

    polygonal = np.isin(type_id, (_POLYGON, _MULTIPOLYGON))
    bad = ~missing & ~polygonal & ~(collection & ~shapely.is_missing(geoms))
    if bad.any():
        kinds, counts = np.unique(type_id[bad], return_counts=True)
        summary = ", ".join(
            f"{count} x {shapely.GeometryType(kind).name}"
            + (" without polygons" if kind == _COLLECTION else "")
            for kind, count in zip(kinds, counts)
        )
        first = np.flatnonzero(bad)[:5].tolist()
        raise NonPolygonalGeometryError(
            f"{int(bad.sum())} of {n} geometries are not polygons ({summary}; first at "
            f"feature index {first}). Only Polygon and MultiPolygon layers can be compared."
        )

    if _has_z_or_m(geoms).any():  # force_2d rebuilds every geometry; most layers are 2-D already
        geoms = shapely.force_2d(geoms)

    transformation = ""
    if not source_crs.equals(_WGS84_LONLAT, ignore_axis_order=True):
        try:
            transformer = pyproj.Transformer.from_crs(source_crs, _WGS84_LONLAT, always_xy=True)
        except pyproj.exceptions.ProjError as exc:
            raise InvalidCrsError(
                f"Cannot transform from the layer CRS {source_crs.name!r} to WGS 84: {exc}"
            ) from exc
        coords = shapely.get_coordinates(geoms)
        lon, lat = transformer.transform(coords[:, 0], coords[:, 1], errcheck=False)
        geoms = shapely.set_coordinates(geoms, np.column_stack([lon, lat]))
        # Read after transforming: with several candidate operations PROJ only knows then.
        transformation = transformer.description

    nonfinite = _nonfinite_geometry_mask(geoms) & ~missing
    geoms[nonfinite] = None
    _wrap_longitudes(geoms)
    return LonLatLayer(geoms, missing, nonfinite, source_crs, transformation)


# --------------------------------------------------------------------------
# Pair centres and projection.
# --------------------------------------------------------------------------
def _lonlat_to_unit(lon, lat):
    """(m,) degrees -> (m, 3) unit vectors on the sphere."""
    lam, phi = np.deg2rad(lon), np.deg2rad(lat)
    cos_phi = np.cos(phi)
    return np.column_stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)])


def unit_to_lonlat(unit):
    """(m, 3) -> lon, lat in degrees (NaN for zero vectors)."""
    with np.errstate(invalid="ignore"):
        nan = ~(np.linalg.norm(unit, axis=1) > 0.0)
        lon = np.rad2deg(np.arctan2(unit[:, 1], unit[:, 0]))
        lat = np.rad2deg(np.arctan2(unit[:, 2], np.hypot(unit[:, 0], unit[:, 1])))
    lon[nan] = np.nan
    lat[nan] = np.nan
    return lon, lat


def _normalise_rows(vectors, fallback):
    """Rows scaled to unit length; rows too short to have a direction take ``fallback``."""
    norm = np.linalg.norm(vectors, axis=1)
    short = norm < 1e-9
    out = vectors / np.where(short, 1.0, norm)[:, None]
    out[short] = fallback[short]
    return out


def geometry_unit_centres(geoms) -> np.ndarray:
    """Centre of each lon/lat geometry as a unit vector, (n,) geometries -> (n, 3).

    The normalised mean of the vertices' unit vectors (antimeridian and pole
    safe; ring-closing vertices count twice, which only nudges the centre).
    Falls back to the first vertex when the mean vanishes (a geometry spread
    round the globe); None/empty geometries give the zero vector.
    """
    geoms = _as_geometry_array(geoms)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    unit = _lonlat_to_unit(coords[:, 0], coords[:, 1])
    n = len(geoms)
    sums = np.column_stack([np.bincount(owner, weights=unit[:, k], minlength=n) for k in range(3)])
    first_vertex = np.zeros((n, 3))
    owners, first = np.unique(owner, return_index=True)
    first_vertex[owners] = unit[first]
    return _normalise_rows(sums, first_vertex)


#: A feature with a vertex further than this from its centre is *spread*: its pairs are measured on the
#: parts of it within reach of the other feature (:func:`project_pairs`).
SPREAD_DEGREES = 20.0
# Added to the reach when parts are chosen by their caps: rounding, and bounding caps by their vertices.
_REACH_MARGIN_DEGREES = 0.5
#: A polygon part reaching further than this from its centre (a whole-world box) is cut, in lon/lat, to the
#: box of the other side of each pair (widened by the reach), and its area is summed over lon/lat tiles.
HUGE_PART_DEGREES = 60.0
_TILE_DEGREES = 30.0
# Tile edges are straight lines in lon/lat; densified to this step so that each tile's frame follows them.
_TILE_EDGE_DEGREES = 0.25


def _angular_radii(geoms, centres, limit_degrees=0.0):
    """(n,) radians from each centre ((n, 3) unit vectors) to the furthest vertex of its geometry.

    Only geometries whose box is more than ``limit_degrees`` wide plus high are measured vertex by
    vertex; the others get the half-diagonal of their box, an upper bound (0 for None).
    """
    bounds = shapely.bounds(geoms)  # NaN for None
    size = np.nan_to_num((bounds[:, 2] - bounds[:, 0]) + (bounds[:, 3] - bounds[:, 1]), nan=0.0)
    radii = np.deg2rad(size)  # width + height bounds the diagonal
    large = np.flatnonzero(size > limit_degrees)
    if len(large):
        coords, owner = shapely.get_coordinates(geoms[large], return_index=True)
        cosine = np.einsum("ij,ij->i", _lonlat_to_unit(coords[:, 0], coords[:, 1]), centres[large][owner])
        lowest = np.ones(len(large))
        np.minimum.at(lowest, owner, cosine)
        radii[large] = np.arccos(np.clip(lowest, -1.0, 1.0))
    # A ring drawn from -180 to 180 runs round the whole parallel (a whole-world box, a polar cap drawn as a
    # box): its vertices do not show how far it reaches, so it counts as reaching everywhere.
    round_the_world = np.flatnonzero(np.nan_to_num(bounds[:, 2] - bounds[:, 0], nan=0.0) >= 360.0 - 1e-9)
    if len(round_the_world):
        radii[round_the_world[spans_every_longitude(geoms[round_the_world])]] = np.pi
    # So may a polygon whose vertices reach far: its inside can hold the antipode of its centre (a whole-world
    # box drawn with many vertices is 90° from its centre at every vertex).
    radii[radii > np.deg2rad(HUGE_PART_DEGREES)] = np.pi
    return radii


#: An edge longer than this (metres) is a straight line in each frame, and frames centred apart bend it apart:
#: a 50 km edge at mid-latitudes by some 50 m. Such features are counted and named in a warning.
LONG_EDGE_M = 50_000.0


def _long_edge_mask(geoms):
    """(n,) bool: a lon/lat geometry has an edge longer than LONG_EDGE_M (chord on the authalic sphere).

    Only geometries whose box is larger than that edge can hold one, so only those are looked at.
    """
    long = np.zeros(len(geoms), dtype=bool)
    bounds = shapely.bounds(geoms)
    limit_deg = np.rad2deg(LONG_EDGE_M / AUTHALIC_RADIUS_M)
    candidates = np.flatnonzero(np.nan_to_num(np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]),
                                              nan=0.0) > limit_deg)
    if len(candidates):
        parts, part_owner = shapely.get_parts(geoms[candidates], return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        coords, ring = shapely.get_coordinates(rings, return_index=True)
        unit = _lonlat_to_unit(coords[:, 0], coords[:, 1])
        same = ring[1:] == ring[:-1]
        length = np.linalg.norm(unit[1:] - unit[:-1], axis=1) * AUTHALIC_RADIUS_M
        owner = part_owner[ring_part[ring[1:]]]
        long[candidates] = np.bincount(owner[same & (length > LONG_EDGE_M)], minlength=len(candidates)) > 0
    return long


@dataclass
class _SpreadParts:
    """The polygon parts of a layer's spread features, with the cap that holds each.

    parts : (m,) Polygons (lon/lat); owner : (m,) feature index; centres : (m, 3) unit vectors;
    radii : (m,) radians; sums : (m, 3) sums of the parts' vertices' unit vectors (the centre of several
    parts is their normalised total, as :func:`geometry_unit_centres` computes it).
    """

    parts: np.ndarray
    owner: np.ndarray
    centres: np.ndarray
    radii: np.ndarray
    sums: np.ndarray

    @classmethod
    def of(cls, geoms, spread):
        index = np.flatnonzero(spread)
        parts, owner = shapely.get_parts(geoms[index], return_index=True)
        coords, vertex_part = shapely.get_coordinates(parts, return_index=True)
        unit = _lonlat_to_unit(coords[:, 0], coords[:, 1])
        sums = np.column_stack([np.bincount(vertex_part, weights=unit[:, k], minlength=len(parts)) for k in range(3)])
        centres = geometry_unit_centres(parts)
        return cls(parts, index[owner], centres, _angular_radii(parts, centres), sums)


def _tiles_of_huge_parts(parts, owner, radii):
    """Parts reaching beyond HUGE_PART_DEGREES cut into lon/lat tiles (densified), each a part of its own.

    Returns (parts, owner) with the huge parts replaced by their non-empty tiles.
    """
    huge = np.flatnonzero(radii > np.deg2rad(HUGE_PART_DEGREES))
    if not len(huge):
        return parts, owner
    lon = np.arange(-180.0, 180.0, _TILE_DEGREES)
    lat = np.arange(-90.0, 90.0, _TILE_DEGREES)
    west, south = (grid.ravel() for grid in np.meshgrid(lon, lat))
    tiles = shapely.box(west, south, west + _TILE_DEGREES, south + _TILE_DEGREES)
    cut = shapely.intersection(np.repeat(parts[huge], len(tiles)), np.tile(tiles, len(huge)))
    cut_owner = np.repeat(owner[huge], len(tiles))
    cut = shapely.segmentize(cut, _TILE_EDGE_DEGREES)
    kept = ~shapely.is_empty(cut) & (shapely.area(cut) > 0)
    rest = np.ones(len(parts), dtype=bool)
    rest[huge] = False
    return np.concatenate([parts[rest], cut[kept]]), np.concatenate([owner[rest], cut_owner[kept]])


def _true_areas(parts, owner, n, radii=None):
    """(n,) m²: the sum over each feature's parts of the part's area in a frame centred on that part."""
    areas = np.full(n, np.nan)
    if radii is not None:
        parts, owner = _tiles_of_huge_parts(parts, owner, radii)
    if len(parts):
        lon0, lat0 = unit_to_lonlat(geometry_unit_centres(parts))
        coords, vertex_part = shapely.get_coordinates(parts, return_index=True)
        x, y = laea_forward(coords[:, 0], coords[:, 1], lon0[vertex_part], lat0[vertex_part])
        local = shapely.set_coordinates(parts.copy(), np.column_stack([x, y]))
        repair_polygonal(local)
        part_area = np.nan_to_num(shapely.area(local), nan=0.0)
        used = np.unique(owner)
        areas[used] = np.bincount(owner, weights=part_area, minlength=n)[used]
    return areas


# Features with more vertices than this keep their per-vertex trigonometry (:class:`_VertexTrig`):
# a country bordering eighty provinces is projected into eighty pair frames, and most of the
# cost of a projection is the trigonometry that does not depend on the frame.
TRIG_CACHE_MIN_VERTICES = 256


@dataclass
class _VertexTrig:
    """sin/cos of longitude and of authalic latitude for every vertex of the large features.

    start : (n,) int64 offset of each feature's first vertex in the arrays below, -1 for
        features not cached (at most TRIG_CACHE_MIN_VERTICES vertices, or missing).
    sin_lam, cos_lam, sin_beta, cos_beta : (V,) float64, in get_coordinates order.
    """

    start: np.ndarray
    sin_lam: np.ndarray
    cos_lam: np.ndarray
    sin_beta: np.ndarray
    cos_beta: np.ndarray

    @classmethod
    def of(cls, geoms):
        geoms = np.asarray(geoms, dtype=object)
        counts = shapely.get_num_coordinates(geoms)
        large = np.flatnonzero(counts > TRIG_CACHE_MIN_VERTICES)
        start = np.full(len(geoms), -1, dtype=np.int64)
        start[large] = np.r_[0, np.cumsum(counts[large])[:-1]].astype(np.int64) if len(large) else 0
        coords = shapely.get_coordinates(geoms[large])
        lam = np.deg2rad(coords[:, 0])
        sin_beta, cos_beta = authalic_sin_cos(coords[:, 1])
        return cls(start, np.sin(lam), np.cos(lam), sin_beta, cos_beta)

    def gather(self, index, counts):
        """The four arrays for the vertices of features ``index`` (all cached), each repeated per use."""
        first = np.repeat(self.start[index] - np.r_[0, np.cumsum(counts)[:-1]], counts)
        position = first + np.arange(len(first))
        return (self.sin_lam[position], self.cos_lam[position],
                self.sin_beta[position], self.cos_beta[position])


@dataclass
class _OwnFrames:
    """Large features (those in :class:`_VertexTrig`) in the frame centred on themselves.

    A pair whose larger side is such a feature can be measured in that feature's own frame:
    the frame is as good as any other LAEA frame around the pair (equal-area, true scale at
    its centre, inside the large feature's extent), and the large side needs no projection
    per pair. lon0, lat0 : (n,) centres (NaN where not cached); geoms : (n,) frame geometries
    (None where not cached); vertices : (n,) vertex counts.
    """

    lon0: np.ndarray
    lat0: np.ndarray
    geoms: np.ndarray
    vertices: np.ndarray

    @classmethod
    def of(cls, geoms, unit_centres, trig):
        geoms = np.asarray(geoms, dtype=object)
        cached = np.flatnonzero(trig.start >= 0)
        lon0, lat0 = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
        lon0[cached], lat0[cached] = unit_to_lonlat(unit_centres[cached])
        projected = np.full(len(geoms), None, dtype=object)
        if len(cached):
            params = CentreParams.from_centres(lon0[cached], lat0[cached])
            projected[cached] = _frame_polygons(geoms[cached], params, cached, trig)
        return cls(lon0, lat0, projected, shapely.get_num_coordinates(geoms))


def _frame_polygons(geoms, params: CentreParams, index=None, trig=None):
    """Project (n,) lon/lat geometries, each with its own centre, into new geometries.

    index, trig : the geometries' positions in their layer and the layer's
        :class:`_VertexTrig`; cached features skip their trigonometry.
    """
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    cached_pair = np.zeros(len(geoms), dtype=bool) if trig is None else trig.start[index] >= 0
    if not cached_pair.any():
        x, y = forward_with_params(coords[:, 0], coords[:, 1], params.take(owner))
    else:
        counts = shapely.get_num_coordinates(geoms)
        cached = np.repeat(cached_pair, counts)
        sin_lam, cos_lam, sin_b, cos_b = (np.empty(len(coords)) for _ in range(4))
        (sin_lam[cached], cos_lam[cached], sin_b[cached], cos_b[cached]) = trig.gather(
            index[cached_pair], counts[cached_pair])
        lam = np.deg2rad(coords[~cached, 0])
        sin_lam[~cached], cos_lam[~cached] = np.sin(lam), np.cos(lam)
        sin_b[~cached], cos_b[~cached] = authalic_sin_cos(coords[~cached, 1])
        x, y = forward_from_trig(sin_lam, cos_lam, sin_b, cos_b, params.take(owner))
    return shapely.set_coordinates(geoms.copy(), np.column_stack([x, y]))


def repair_polygonal(geoms):
    """Make (n,) (multi)polygons valid, in place; returns the (n,) bool mask of repaired ones.

    Uses make_valid's 'structure' method without collapsed parts, so every
    result is a (Multi)Polygon (possibly empty); None stays None.
    """
    needs_repair = ~shapely.is_missing(geoms) & ~shapely.is_valid(geoms)
    if needs_repair.any():
        broken = geoms[needs_repair]
        try:
            fixed = shapely.make_valid(broken, method="structure", keep_collapsed=False)
        except TypeError:  # shapely < 2.1 has only the 'linework' method
            fixed = shapely.make_valid(broken)
        not_polygonal = ~np.isin(shapely.get_type_id(fixed), (_POLYGON, _MULTIPOLYGON))
        if not_polygonal.any():
            parts = _polygonal_parts_of_collections(_wrap_in_collections(fixed[not_polygonal]))
            parts[shapely.is_missing(parts)] = shapely.from_wkt("POLYGON EMPTY")
            fixed[not_polygonal] = parts
        geoms[needs_repair] = fixed
    return needs_repair


def _wrap_in_collections(geoms):
    """(n,) geometries -> (n,) GeometryCollections holding each one."""
    return shapely.geometrycollections(geoms, indices=np.arange(len(geoms)))


@dataclass
class PairFrames:
    """Pairs of polygons, each pair in its own local LAEA frame (metres).

    Attributes (n = number of pairs):
      a, b: (n,) object arrays of valid Polygon/MultiPolygon in frame metres
        (None where the source feature was unusable; possibly empty where
        repair left nothing of area).
      lon0, lat0: (n,) frame centres in degrees (NaN when both sides are None).
      index_a, index_b: (n,) the source feature indices of each pair.
      repaired_a, repaired_b: (n,) bool, whether that side needed validity repair
        in this pair's frame.
      area_a, area_b: (n,) m², the whole feature's area where the frame holds only the parts of
        a spread feature within reach of the other (NaN: the frame geometry's own area); None: no such pair.
    """

    _FIELDS = ("a", "b", "lon0", "lat0", "index_a", "index_b", "repaired_a", "repaired_b")

    def whole_areas(self):
        """(area_a, area_b): (n,) arrays of the whole features' areas where known, NaN elsewhere."""
        return tuple(np.full(len(self), np.nan) if area is None else area for area in (self.area_a, self.area_b))

    a: np.ndarray
    b: np.ndarray
    lon0: np.ndarray
    lat0: np.ndarray
    index_a: np.ndarray
    index_b: np.ndarray
    repaired_a: np.ndarray
    repaired_b: np.ndarray
    _params: CentreParams = field(repr=False, default=None)
    area_a: np.ndarray = None
    area_b: np.ndarray = None

    def __len__(self):
        return len(self.a)

    @property
    def n_repaired_a(self) -> int:
        """Number of unique source features of A that needed repair in some frame."""
        return int(np.unique(self.index_a[self.repaired_a]).size)

    @property
    def n_repaired_b(self) -> int:
        """Number of unique source features of B that needed repair in some frame."""
        return int(np.unique(self.index_b[self.repaired_b]).size)

    def with_rows(self, rows, other):
        """These frames with pairs ``rows`` (int (k,)) taken from ``other`` (k pairs, the same source features)."""
        merged = {name: getattr(self, name).copy() for name in self._FIELDS}
        merged["area_a"], merged["area_b"] = self.whole_areas()
        other_areas = dict(zip(("area_a", "area_b"), other.whole_areas()))
        for name, values in merged.items():
            values[rows] = other_areas[name] if name in other_areas else getattr(other, name)
        return PairFrames(**merged)

    def subset(self, keep):
        """The pairs selected by ``keep`` (a bool mask or an index array), as new PairFrames."""
        return PairFrames(
            a=self.a[keep], b=self.b[keep], lon0=self.lon0[keep], lat0=self.lat0[keep],
            index_a=self.index_a[keep], index_b=self.index_b[keep],
            repaired_a=self.repaired_a[keep], repaired_b=self.repaired_b[keep],
            area_a=None if self.area_a is None else self.area_a[keep],
            area_b=None if self.area_b is None else self.area_b[keep],
        )

    def _centre_params(self):
        if self._params is None:
            self._params = CentreParams.from_centres(self.lon0, self.lat0)
        return self._params

    def to_lonlat(self, x, y, pair_index):
        """Frame metres -> lon/lat degrees; x, y, pair_index of one (broadcast) shape."""
        return inverse_with_params(x, y, self._centre_params().take(np.asarray(pair_index)))

    def to_local(self, lon, lat, pair_index):
        """Lon/lat degrees -> frame metres of pair ``pair_index``; arrays of one (broadcast) shape."""
        return forward_with_params(lon, lat, self._centre_params().take(np.asarray(pair_index)))


def _frame_side(geoms, index, params, trig, own, layer):
    """One side of the pairs in their frames; pairs flagged ``own`` take the side's cached own-frame geometry."""
    if not own.any():
        return _frame_polygons(geoms[index], params, index, trig)
    out = np.empty(len(index), dtype=object)
    out[own] = layer.own_frames.geoms[index[own]]
    rest = np.flatnonzero(~own)
    if len(rest):
        out[rest] = _frame_polygons(geoms[index[rest]], params.take(rest), index[rest], trig)
    return out


def _vertex_trig(layer):
    return layer.vertex_trig if isinstance(layer, LonLatLayer) else None


def _layer_geoms_and_centres(layer, index):
    """(geoms array, (len(index), 3) unit centres of the indexed features)."""
    if isinstance(layer, LonLatLayer):
        return layer.geoms, layer.unit_centres[index]
    geoms = _as_geometry_array(layer)
    used, inverse = np.unique(index, return_inverse=True)
    return geoms, geometry_unit_centres(geoms[used])[inverse.reshape(-1)]


def _parts_within_reach(layer_a, layer_b, index_a, index_b, rows, reach_rad):
    """The parts of each side of pairs ``rows`` that come within reach of the other side.

    A spread feature is split into its polygon parts, any other feature is one piece; a piece is kept
    when its cap (centre, radius) comes within ``reach_rad`` (+ a margin) of a piece of the other side:
    beyond that nothing can meet. Returns (k,) geometries per side (the whole feature where it is not
    spread; an empty MultiPolygon where no part is within reach), each with the (k, 3) unit centres of
    what was kept.
    """
    reach = np.broadcast_to(np.asarray(reach_rad, dtype=float), (len(index_a),))[rows] + np.deg2rad(
        _REACH_MARGIN_DEGREES)
    sides = []
    for layer, index in ((layer_a, index_a[rows]), (layer_b, index_b[rows])):
        spread = layer.spread[index]
        whole = np.flatnonzero(~spread)
        parts = layer.spread_parts
        features = index[spread]
        first = np.searchsorted(parts.owner, features, side="left")
        counts = np.searchsorted(parts.owner, features, side="right") - first
        part_row = np.repeat(np.flatnonzero(spread), counts)
        part_pos = np.repeat(first - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
        sides.append(dict(
            row=np.concatenate([whole, part_row]),
            centre=np.concatenate([layer.unit_centres[index[whole]], parts.centres[part_pos]]),
            radius=np.concatenate([layer.radii[index[whole]], parts.radii[part_pos]]),
            part=np.concatenate([np.full(len(whole), -1), part_pos]),
        ))
    a, b = sides
    order_b = np.argsort(b["row"], kind="stable")
    per_row_b = np.bincount(b["row"], minlength=len(rows))
    start_b = np.r_[0, np.cumsum(per_row_b)[:-1]]
    repeat = per_row_b[a["row"]]
    piece_a = np.repeat(np.arange(len(a["row"])), repeat)
    piece_b = order_b[np.repeat(start_b[a["row"]] - np.r_[0, np.cumsum(repeat)[:-1]], repeat)
                      + np.arange(repeat.sum())]
    cosine = np.einsum("ij,ij->i", a["centre"][piece_a], b["centre"][piece_b])
    near = np.arccos(np.clip(cosine, -1.0, 1.0)) <= a["radius"][piece_a] + b["radius"][piece_b] + reach[
        a["row"][piece_a]]
    out = []
    for side, piece, layer, index in ((a, piece_a, layer_a, index_a[rows]), (b, piece_b, layer_b, index_b[rows])):
        geoms = np.array(layer.geoms[index], dtype=object)
        centres = layer.unit_centres[index].copy()
        keep = np.bincount(piece[near], minlength=len(side["row"])) > 0
        split = side["part"] >= 0
        spread_rows = np.unique(side["row"][split])
        geoms[spread_rows] = shapely.from_wkt("MULTIPOLYGON EMPTY")
        kept = keep & split
        if kept.any():
            part_rows = side["row"][kept]
            order = np.argsort(part_rows, kind="stable")
            pieces = layer.spread_parts.parts[side["part"][kept]][order]
            # The centre of the kept parts, from their cached vertex sums.
            sums = layer.spread_parts.sums[side["part"][kept]]
            total = np.column_stack([np.bincount(part_rows, weights=sums[:, k], minlength=len(rows))
                                     for k in range(3)])
            huge = side["radius"][kept][order] > np.deg2rad(HUGE_PART_DEGREES)
            if huge.any():
                pieces[huge] = _cut_to_other_side(pieces[huge], part_rows[order][huge], layer_a, layer_b,
                                                  index_a[rows], index_b[rows], side is a, reach)
            pieces, which = shapely.get_parts(pieces, return_index=True)  # a cut may leave several polygons
            shapely.multipolygons(pieces, indices=part_rows[order][which], out=geoms)
            with_parts = np.unique(part_rows)
            centres[with_parts] = _normalise_rows(total[with_parts], centres[with_parts])
            cut_rows = np.unique(part_rows[order][huge])
            if len(cut_rows):  # the centre of what was kept of a huge part
                centres[cut_rows] = geometry_unit_centres(geoms[cut_rows])
        out.append((geoms, centres))
    return out


def _cut_to_other_side(pieces, piece_rows, layer_a, layer_b, index_a, index_b, is_a, reach):
    """Huge polygon parts cut, in lon/lat, to the box of the other side of their pairs, widened by the reach.

    Only the part that can meet the other side matters for the overlap (the whole area comes from
    :attr:`LonLatLayer.true_area`); a huge part that crosses the date line is left whole.
    """
    other_layer, other_index = (layer_b, index_b) if is_a else (layer_a, index_a)
    others = other_layer.geoms[other_index[piece_rows]]
    box = shapely.bounds(others)
    # A neighbour across the date line: its box in 0..360 longitudes, where it is narrow.
    across = np.flatnonzero(np.nan_to_num(box[:, 2] - box[:, 0], nan=0.0) > 180.0)
    if len(across):
        coords, owner = shapely.get_coordinates(others[across], return_index=True)
        lon360 = np.mod(coords[:, 0], 360.0)
        west360, east360 = np.full(len(across), np.inf), np.full(len(across), -np.inf)
        np.minimum.at(west360, owner, lon360)
        np.maximum.at(east360, owner, lon360)
        narrower = (east360 - west360) < (box[across, 2] - box[across, 0])
        box[across[narrower], 0], box[across[narrower], 2] = west360[narrower], east360[narrower]
    widen = np.rad2deg(reach[piece_rows])[:, None] + _REACH_MARGIN_DEGREES
    lat_low = np.maximum(box[:, 1:2] - widen, -90.0)
    lat_high = np.minimum(box[:, 3:4] + widen, 90.0)
    stretch = 1.0 / np.maximum(np.cos(np.deg2rad(np.maximum(np.abs(lat_low), np.abs(lat_high)))), 1e-3)
    west, east = box[:, 0:1] - widen * stretch, box[:, 2:3] + widen * stretch
    clip = shapely.box(west[:, 0], lat_low[:, 0], east[:, 0], lat_high[:, 0])
    # Past the date line the box goes on at the other end of the longitudes.
    for beyond, shift in ((east[:, 0] > 180.0, -360.0), (west[:, 0] < -180.0, 360.0)):
        if beyond.any():
            twin = shapely.box(west[beyond, 0] + shift, lat_low[beyond, 0], east[beyond, 0] + shift,
                               lat_high[beyond, 0])
            clip[beyond] = shapely.union(clip[beyond], twin)
    bounds = shapely.bounds(pieces)
    planar = ((bounds[:, 2] - bounds[:, 0]) <= 180.0) | ~_jumps_the_date_line(pieces)
    small_other = (box[:, 2] - box[:, 0]) <= 180.0
    cut = planar & small_other & np.isfinite(box).all(axis=1)
    out = pieces.copy()
    if cut.any():
        out[cut] = shapely.intersection(pieces[cut], clip[cut])
        polygonal = np.isin(shapely.get_type_id(out[cut]), (_POLYGON, _MULTIPOLYGON))
        bad = np.flatnonzero(cut)[~polygonal]
        if len(bad):
            out[bad] = _polygonal_parts_of_collections(_wrap_in_collections(out[bad]))
        out[shapely.is_missing(out)] = shapely.from_wkt("POLYGON EMPTY")
        # The long edges the huge part and the cut bring are lines in lon/lat: densified, the frame follows them.
        out[cut] = shapely.segmentize(out[cut], _TILE_EDGE_DEGREES)
    return out


def _jumps_the_date_line(geoms):
    """(n,) bool: a lon/lat geometry has an edge that crosses the date line the short way (179.9 to -179.9),
    so it cannot be cut as drawn in lon/lat."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    step = np.abs(np.diff(coords[:, 0]))
    same = owner[1:] == owner[:-1]
    return np.bincount(owner[1:][same & (step > 180.0) & (step < 360.0 - 1e-9)], minlength=len(geoms)) > 0


def project_pairs(lonlat_a, lonlat_b, index_a, index_b, centers=None, repair=True,
                  centre_on_large=False, reach_m=0.0) -> PairFrames:
    """Project n pairs of lon/lat polygons into per-pair local LAEA frames.

    Pair k is ``(lonlat_a[index_a[k]], lonlat_b[index_b[k]])``.

    Parameters
    ----------
    lonlat_a, lonlat_b : LonLatLayer or (n_a,), (n_b,) arrays of lon/lat
        (degrees) shapely geometries or None.  Passing the LonLatLayer caches
        the per-feature centres across calls (useful when chunking pairs).
    index_a, index_b : (n,) integer arrays.
    repair : check and repair validity in every pair frame (default). Callers
        that repaired each source geometry once in its own frame pass False and
        save a GEOS validity pass per pair.
    centers : optional ``(lon0, lat0)`` pair of (n,) arrays in degrees; by
        default the spherical midpoint of the two features' centres (see
        :func:`geometry_unit_centres`), computed once per source feature.
    centre_on_large : with LonLatLayers and ``repair=False``: a pair whose larger side has
        more than TRIG_CACHE_MIN_VERTICES vertices is measured in the frame centred on that
        side (:class:`_OwnFrames`), which is projected once for all its pairs. Areas are
        the same in either frame (equal-area); a country bordering eighty provinces is
        projected once instead of eighty times.
    reach_m : float or (n,) metres: beyond this two features cannot meet (the search distance, and
        what σ can move). A pair with a spread feature (:attr:`LonLatLayer.spread`, with LonLatLayers)
        is measured on the parts of each side within reach of the other, in a frame centred on them,
        and its ``area_a`` / ``area_b`` give the spread features' whole areas.

    Returns
    -------
    PairFrames with (n,) valid polygons in metres.  All work is batched
    (one NumPy pass over all vertices); memory is O(vertices of all pairs),
    so callers chunk very large n.
    """
    index_a = np.asarray(index_a, dtype=np.intp).reshape(-1)
    index_b = np.asarray(index_b, dtype=np.intp).reshape(-1)
    if index_a.shape != index_b.shape:
        raise ValueError(f"index_a and index_b differ in length: {index_a.size} vs {index_b.size}")
    geoms_a, unit_a = _layer_geoms_and_centres(lonlat_a, index_a)
    geoms_b, unit_b = _layer_geoms_and_centres(lonlat_b, index_b)

    if centers is None:
        # Midpoint on the sphere; a missing side contributes the zero vector, so
        # the other side's centre is used.  Near-antipodal pairs fall back to A.
        lon0, lat0 = unit_to_lonlat(_normalise_rows(unit_a + unit_b, unit_a))
    else:
        lon0, lat0 = (np.broadcast_to(np.asarray(c, np.float64), index_a.shape).copy() for c in centers)
    on_a = on_b = np.zeros(len(index_a), dtype=bool)
    if centre_on_large and centers is None and not repair and isinstance(lonlat_a, LonLatLayer) \
            and isinstance(lonlat_b, LonLatLayer):
        own_a, own_b = lonlat_a.own_frames, lonlat_b.own_frames
        vertices_a, vertices_b = own_a.vertices[index_a], own_b.vertices[index_b]
        on_a = ~shapely.is_missing(own_a.geoms[index_a]) & (vertices_a >= vertices_b)
        on_b = ~shapely.is_missing(own_b.geoms[index_b]) & ~on_a
        lon0[on_a], lat0[on_a] = own_a.lon0[index_a[on_a]], own_a.lat0[index_a[on_a]]
        lon0[on_b], lat0[on_b] = own_b.lon0[index_b[on_b]], own_b.lat0[index_b[on_b]]
    spread_rows = np.zeros(0, dtype=np.intp)
    if centers is None and isinstance(lonlat_a, LonLatLayer) and isinstance(lonlat_b, LonLatLayer):
        spread_rows = np.flatnonzero(lonlat_a.spread[index_a] | lonlat_b.spread[index_b])
    if len(spread_rows):
        (near_a, centre_a), (near_b, centre_b) = _parts_within_reach(
            lonlat_a, lonlat_b, index_a, index_b, spread_rows, np.asarray(reach_m, dtype=float) / AUTHALIC_RADIUS_M)
        lon0[spread_rows], lat0[spread_rows] = unit_to_lonlat(_normalise_rows(centre_a + centre_b, centre_a))
        on_a, on_b = on_a.copy(), on_b.copy()
        on_a[spread_rows] = on_b[spread_rows] = False
    params = CentreParams.from_centres(lon0, lat0)

    keep_whole = np.ones(len(index_a), dtype=bool)
    keep_whole[spread_rows] = False
    frame_a = np.full(len(index_a), None, dtype=object)
    frame_b = np.full(len(index_a), None, dtype=object)
    whole = np.flatnonzero(keep_whole)
    if len(whole):
        sub = params.take(whole)
        frame_a[whole] = _frame_side(geoms_a, index_a[whole], sub, _vertex_trig(lonlat_a), on_a[whole], lonlat_a)
        frame_b[whole] = _frame_side(geoms_b, index_b[whole], sub, _vertex_trig(lonlat_b), on_b[whole], lonlat_b)
    area_a = area_b = None
    if len(spread_rows):
        usable_a = ~shapely.is_missing(near_a)
        usable_b = ~shapely.is_missing(near_b)
        sub = params.take(spread_rows)
        frame_a[spread_rows] = near_a
        frame_b[spread_rows] = near_b
        if usable_a.any():
            frame_a[spread_rows[usable_a]] = _frame_polygons(near_a[usable_a], sub.take(np.flatnonzero(usable_a)))
        if usable_b.any():
            frame_b[spread_rows[usable_b]] = _frame_polygons(near_b[usable_b], sub.take(np.flatnonzero(usable_b)))
        area_a, area_b = np.full(len(index_a), np.nan), np.full(len(index_a), np.nan)
        area_a[spread_rows] = lonlat_a.true_area[index_a[spread_rows]]
        area_b[spread_rows] = lonlat_b.true_area[index_b[spread_rows]]
    if repair:
        repaired_a, repaired_b = repair_polygonal(frame_a), repair_polygonal(frame_b)
    else:  # the caller repaired every source geometry once, in its own frame (preparation.prepare_layer)
        repaired_a = repaired_b = np.zeros(len(index_a), dtype=bool)
    return PairFrames(
        a=frame_a,
        b=frame_b,
        lon0=lon0,
        lat0=lat0,
        index_a=index_a,
        index_b=index_b,
        repaired_a=repaired_a,
        repaired_b=repaired_b,
        _params=params,
        area_a=area_a,
        area_b=area_b,
    )
