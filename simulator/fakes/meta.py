"""A local fake of the Meta Marketing API (Graph API): ad account edges for campaigns, ad sets, ads
and insights, over the simulated world's `meta/*.json` and `meta/insights.parquet`.

Shapes follow Meta's reference: cursor paging (`paging.cursors.before/after`, `paging.next` as a
full URL, no `next` on the last page), numbers as strings in insights, purchases inside `actions`
and `action_values`, errors as `{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}` with HTTP 400 (500 for transient server errors).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from simulator.fakes.common import (
    Faults,
    Request,
    Response,
    connect,
    format_money,
    parquet_sql,
    world_today,
)
from simulator.model.ads import ACCOUNT_ID

DEFAULT_TOKEN = "fake-meta-token"

# The client this fake stands in for, named as the client names itself (dlt's `sources.meta_ads`),
# the world file it serves, and the account it answers for besides DEFAULT_TOKEN: how the demo
# finds it and points that client here.
STANDS_IN_FOR = "meta_ads"
DATA_FILE = "meta/campaigns.json"
ACCOUNT_SETTING = ("ad_account_id", ACCOUNT_ID)


DEFAULT_LIMIT = 25
CURRENCY, TIME_ZONE = "IDR", "Asia/Jakarta"
FAULT_KINDS = ("rate_limit", "account_rate_limit", "unavailable", "expired_token")
# Meta reports a pixel purchase under several overlapping action types; each carries the same
# count. Sum ONE of them, never all.
PURCHASE_ACTION_TYPES = ("offsite_conversion.fb_pixel_purchase", "omni_purchase", "purchase")
RATE_LIMIT_DOC = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting"

# Custom Audience membership (POST / DELETE /{custom_audience_id}/users): the hashed identifier
# types the fake takes, Meta's limit of rows per request, and a valid hash (SHA-256, lower hex).
AUDIENCE_SCHEMA_TYPES = ("EMAIL", "EMAIL_SHA256", "PHONE", "PHONE_SHA256")
AUDIENCE_MAX_ROWS = 10_000
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

PATH = re.compile(r"^/(?:v\d+\.\d+/)?([A-Za-z0-9_]+)(?:/([A-Za-z_]+))?/?$")

EDGE_FILES = {"campaigns": "campaigns.json", "adsets": "adsets.json", "ads": "ads.json"}
NODE_TYPES = {"campaigns": "Campaign", "adsets": "AdSet", "ads": "Ad"}
# Fields each object type answers (those the data lacks are left out of the object, as Meta
# leaves out unset fields); any field present in the data is also allowed.
OBJECT_FIELDS = {
    "campaigns": {
        "id", "account_id", "name", "status", "configured_status", "effective_status",
        "objective", "daily_budget", "lifetime_budget", "budget_remaining", "buying_type",
        "bid_strategy", "special_ad_categories", "spend_cap", "created_time", "updated_time",
        "start_time", "stop_time",
    },
    "adsets": {
        "id", "account_id", "campaign_id", "name", "status", "configured_status",
        "effective_status", "daily_budget", "lifetime_budget", "budget_remaining",
        "bid_strategy", "billing_event", "optimization_goal", "targeting", "created_time",
        "updated_time", "start_time", "end_time", "stop_time",
    },
    "ads": {
        "id", "account_id", "campaign_id", "adset_id", "name", "status", "configured_status",
        "effective_status", "creative", "created_time", "updated_time",
    },
}  # fmt: skip
ACCOUNT_FIELDS = ("id", "account_id", "currency", "timezone_name", "account_status")
HIDDEN_BY_DEFAULT = {"DELETED", "ARCHIVED"}

LEVELS = ("account", "campaign", "adset", "ad")
LEVEL_KEYS = {
    "account": ("account_id",),
    "campaign": ("account_id", "campaign_id"),
    "adset": ("account_id", "campaign_id", "adset_id"),
    "ad": ("account_id", "campaign_id", "adset_id", "ad_id"),
}
NAME_OF = {"campaign_id": "campaign_name", "adset_id": "adset_name", "ad_id": "ad_name"}
INSIGHT_FIELDS = {
    "account_id", "account_currency", "campaign_id", "campaign_name", "adset_id", "adset_name",
    "ad_id", "ad_name", "impressions", "reach", "clicks", "spend", "actions", "action_values",
    "ctr", "cpc", "cpm", "frequency", "date_start", "date_stop",
}  # fmt: skip
DEFAULT_INSIGHT_FIELDS = ("impressions", "spend")
BREAKDOWNS = ("publisher_platform",)
DATE_PRESETS = {
    "today": (0, 0),
    "yesterday": (1, 1),
    "last_3d": (3, 1),
    "last_7d": (7, 1),
    "last_14d": (14, 1),
    "last_28d": (28, 1),
    "last_30d": (30, 1),
    "last_90d": (90, 1),
}  # preset -> (days back to the first day, days back to the last day)
FILTER_OPERATORS = (
    "EQUAL", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN",
    "LESS_THAN_OR_EQUAL", "IN", "NOT_IN", "CONTAIN", "NOT_CONTAIN",
)  # fmt: skip


class GraphError(Exception):
    """An error the Graph API would answer with."""

    def __init__(
        self,
        message: str,
        code: int,
        *,
        type_: str = "OAuthException",
        subcode: int | None = None,
        status: int = 400,
        transient: bool | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message, self.code, self.type, self.subcode = message, code, type_, subcode
        self.status, self.transient, self.headers = status, transient, headers or {}


def _param_error(message: str) -> GraphError:
    return GraphError(f"(#100) {message}", 100)


@dataclass(frozen=True)
class Insights:
    """A validated insights request."""

    level: str
    fields: list[str]
    breakdowns: list[str]
    since: date
    until: date
    increment: str  # "1".."90", "all_days" or "monthly"
    where_sql: str  # binds $p0, $p1, ...
    where_params: list[Any]

    def params(self) -> dict[str, Any]:
        named = {f"p{i}": value for i, value in enumerate(self.where_params)}
        return {"since": self.since, "until": self.until, **named}


class MetaFake:
    """The Marketing API for the ad accounts in the data. `handle` answers one request."""

    name = "meta"

    def __init__(
        self,
        data_dir: Path | str,
        *,
        token: str = DEFAULT_TOKEN,
        today: date | None = None,
        expired_tokens: tuple[str, ...] = (),
    ):
        self.data_dir = Path(data_dir)
        self.token = token
        self.expired_tokens = set(expired_tokens)
        self.fixed_today = today
        self.faults = Faults(FAULT_KINDS)
        self._trace = itertools.count(1)
        self._trace_lock = threading.Lock()
        # Custom Audiences by id (any numeric id that is no campaign, ad set or ad): the rows
        # each holds, and every membership request received, for tests to inspect.
        self.custom_audiences: dict[str, set[tuple[str, ...]]] = {}
        self.audience_requests: list[dict[str, Any]] = []
        self._audience_lock = threading.Lock()

    @property
    def meta_dir(self) -> Path:
        return self.data_dir / "meta"

    @property
    def insights_path(self) -> Path:
        return self.meta_dir / "insights.parquet"

    def today(self) -> date:
        """date_preset values count from the world's as-of date (the accounts are on WIB)."""
        if self.fixed_today is not None:
            return self.fixed_today
        fallback = None
        if self.insights_path.is_file():
            fallback = f"SELECT max(date_stop::DATE) FROM {parquet_sql(self.insights_path)}"
        return world_today(self.data_dir, fallback)

    def matches(self, path: str) -> bool:
        match = PATH.match(path)
        return bool(match) and (match.group(1).startswith("act_") or match.group(1).isdigit())

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except GraphError as error:
            body: dict[str, Any] = {"message": error.message, "type": error.type}
            if error.transient is not None:
                body["is_transient"] = error.transient
            body["code"] = error.code
            if error.subcode is not None:
                body["error_subcode"] = error.subcode
            body["fbtrace_id"] = self._fbtrace_id()
            return Response(error.status, {"error": body}, dict(error.headers))

    # --- routing -----------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        match = PATH.match(request.path)
        if not match:
            raise _unsupported(request, request.path.strip("/"))
        node, edge = match.group(1), match.group(2)
        self._authenticate(request)
        account = self._account_of(node)
        fault = self.faults.take(request.path, ("rate_limit", "account_rate_limit", "unavailable"))
        if fault:
            raise self._fault_error(fault, account, is_insights=edge == "insights")
        if edge == "users" and node.isdigit() and account is None:
            if request.method not in ("POST", "DELETE"):
                raise _unsupported(request, node)
            return Response(
                200, self._audience_users(node, request), self._usage_headers(None, insights=False)
            )
        if request.method != "GET":
            raise _unsupported(request, node)

        if node.startswith("act_"):
            account_id = node.removeprefix("act_")
            if account_id not in self._account_ids():
                raise _unsupported(request, node)
            scope = {"account_id": account_id}
            if edge is None:
                body = self._account_node(account_id, request)
            elif edge in EDGE_FILES:
                body = self._objects(edge, scope, request)
            elif edge == "insights":
                body = self._insights(scope, "account", request)
            else:
                raise GraphError(f"Unknown path components: /{edge}", 2500)
        else:
            kind, obj = self._find_object(node)
            if obj is None:
                raise _unsupported(request, node)
            level = kind.removesuffix("s")
            scope = {"account_id": _account_id(obj), f"{level}_id": obj["id"]}
            children = {"campaigns": ("adsets", "ads"), "adsets": ("ads",), "ads": ()}[kind]
            if edge is None:
                body = _select_fields(kind, obj, _fields(request))
            elif edge in children:
                body = self._objects(edge, scope, request)
            elif edge == "insights":
                body = self._insights(scope, level, request)
            else:
                raise GraphError(f"Unknown path components: /{edge}", 2500)
        return Response(200, body, self._usage_headers(account, insights=edge == "insights"))

    def _authenticate(self, request: Request) -> None:
        token = request.query.get("access_token") or request.bearer_token()
        if not token:
            raise GraphError("An access token is required to request this resource.", 104)
        expired = token in self.expired_tokens or (
            token == self.token and self.faults.take(request.path, ("expired_token",))
        )
        if expired:
            now = datetime.combine(self.today(), datetime.min.time()) + timedelta(hours=9)
            then = now - timedelta(days=1, hours=2)
            raise GraphError(
                "Error validating access token: Session has expired on "
                f"{then:%A, %d-%b-%y %H:%M:%S} PDT. The current time is "
                f"{now:%A, %d-%b-%y %H:%M:%S} PDT.",
                190,
                subcode=463,
            )
        if token != self.token:
            raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)

    def _fault_error(self, kind: str, account: str | None, *, is_insights: bool) -> GraphError:
        if kind == "rate_limit":
            return GraphError(
                "(#17) User request limit reached", 17, subcode=2446079, transient=True
            )
        if kind == "account_rate_limit":
            code, use_case = (80000, "ads_insights") if is_insights else (80004, "ads_management")
            text = (
                "There have been too many calls from this ad-account."
                if is_insights
                else "There have been too many calls to this ad-account."
            )
            usage = {
                "type": use_case,
                "call_count": 100,
                "total_cputime": 35,
                "total_time": 48,
                "estimated_time_to_regain_access": 1,
            }
            return GraphError(
                f"(#{code}) {text} Wait a bit and try again. For more info, please refer to "
                f"{RATE_LIMIT_DOC}.",
                code,
                subcode=2446079,
                transient=True,
                headers={"x-business-use-case-usage": json.dumps({account or "0": [usage]})},
            )
        return GraphError(
            "An unexpected error has occurred. Please retry your request later.",
            2,
            status=500,
            transient=True,
        )

    def _usage_headers(self, account: str | None, *, insights: bool) -> dict[str, str]:
        usage = {
            "type": "ads_insights" if insights else "ads_management",
            "call_count": 1,
            "total_cputime": 1,
            "total_time": 1,
            "estimated_time_to_regain_access": 0,
        }
        headers = {"x-business-use-case-usage": json.dumps({account or "0": [usage]})}
        if insights:
            throttle = {"app_id_util_pct": 0.0, "acc_id_util_pct": 0.0}
            throttle["ads_api_access_tier"] = "standard_access"
            headers["x-fb-ads-insights-throttle"] = json.dumps(throttle)
        return headers

    def _fbtrace_id(self) -> str:
        with self._trace_lock:
            n = next(self._trace)
        digest = hashlib.sha256(f"fbtrace:{n}".encode()).digest()
        return base64.b64encode(digest).decode()[:11].replace("+", "A").replace("/", "B")

    # --- custom audiences --------------------------------------------------------------------

    def audience_members(self, audience_id: str) -> set[tuple[str, ...]]:
        """The rows (hashes in the order of the schema they came with) the audience holds."""
        with self._audience_lock:
            return set(self.custom_audiences.get(str(audience_id), set()))

    def _audience_users(self, audience_id: str, request: Request) -> dict[str, Any]:
        """Add (POST) or remove (DELETE) rows: `payload` as a JSON body field, a form field or a
        query parameter, `{"schema": [...], "data": [[...], ...]}`, and an optional upload
        `session` whose `session_id` the answer repeats."""
        body = _audience_body(request)
        payload = body.get("payload")
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                raise _param_error("Param payload must be a valid JSON object") from None
        if not isinstance(payload, dict):
            raise _param_error("The parameter payload is required")
        schema, data = payload.get("schema"), payload.get("data")
        if isinstance(schema, str):
            schema = [schema]
        if not isinstance(schema, list) or not schema:
            raise _param_error("Param payload[schema] must be a non-empty array")
        for kind in schema:
            if kind not in AUDIENCE_SCHEMA_TYPES:
                raise _param_error(
                    f"Invalid schema type {kind}; the local Meta fake takes "
                    f"{', '.join(AUDIENCE_SCHEMA_TYPES)}"
                )
        if not isinstance(data, list) or not data:
            raise _param_error("Param payload[data] must be a non-empty array")
        if len(data) > AUDIENCE_MAX_ROWS:
            raise _param_error(
                f"Too many entries in one request: {len(data)}; the maximum is {AUDIENCE_MAX_ROWS}"
            )
        session = body.get("session")
        if isinstance(session, str):
            try:
                session = json.loads(session)
            except ValueError:
                session = None
        session_id = (session or {}).get("session_id") if isinstance(session, dict) else None
        if session_id is None:
            session_id = int(hashlib.sha256(request.body or b"-").hexdigest()[:13], 16)

        valid: list[tuple[str, ...]] = []
        samples: dict[str, str] = {}
        for row in data:
            row = [row] if isinstance(row, str) else row
            if not isinstance(row, list) or len(row) != len(schema):
                samples.setdefault(str(row)[:80], "Row does not match the schema's length")
                continue
            values = tuple("" if v is None else str(v) for v in row)
            if not any(values) or any(v and not SHA256_HEX.fullmatch(v) for v in values):
                samples.setdefault(values[0] or str(values)[:80], "Not a SHA-256 hash")
                continue
            valid.append(values)
        with self._audience_lock:
            members = self.custom_audiences.setdefault(audience_id, set())
            if request.method == "POST":
                members.update(valid)
            else:
                members.difference_update(valid)
            self.audience_requests.append(
                {
                    "method": request.method,
                    "audience_id": audience_id,
                    "schema": list(schema),
                    "rows": len(data),
                    "valid_rows": len(valid),
                    "session": session if isinstance(session, dict) else None,
                }
            )
        return {
            "audience_id": audience_id,
            "session_id": str(session_id),
            "num_received": len(data),
            "num_invalid_entries": len(data) - len(valid),
            "invalid_entry_samples": dict(itertools.islice(samples.items(), 10)),
        }

    # --- data --------------------------------------------------------------------------------

    def _load(self, edge: str) -> list[dict[str, Any]]:
        path = self.meta_dir / EDGE_FILES[edge]
        if not path.is_file():
            return []
        return json.loads(path.read_text())

    def _account_ids(self) -> set[str]:
        ids = {_account_id(obj) for obj in self._load("campaigns")}
        if self.insights_path.is_file():
            with connect() as con:
                rows = con.execute(
                    f"SELECT DISTINCT account_id::VARCHAR FROM {parquet_sql(self.insights_path)}"
                ).fetchall()
            ids |= {str(r[0]).removeprefix("act_") for r in rows}
        return ids

    def _account_of(self, node: str) -> str | None:
        if node.startswith("act_"):
            return node.removeprefix("act_")
        _, obj = self._find_object(node)
        return _account_id(obj) if obj else None

    def _find_object(self, object_id: str) -> tuple[str, dict[str, Any] | None]:
        for edge in EDGE_FILES:
            for obj in self._load(edge):
                if str(obj.get("id")) == object_id:
                    return edge, obj
        return "", None

    # --- objects -----------------------------------------------------------------------------

    def _account_node(self, account_id: str, request: Request) -> dict[str, Any]:
        values = {
            "id": f"act_{account_id}",
            "account_id": account_id,
            "currency": CURRENCY,
            "timezone_name": TIME_ZONE,
            "account_status": 1,
        }
        fields = _fields(request) or ["id"]
        for name in fields:
            if name not in ACCOUNT_FIELDS:
                raise _param_error(
                    f"Tried accessing nonexisting field ({name}) on node type (AdAccount)"
                )
        return {name: values[name] for name in ["id", *fields] if name in values}

    def _objects(self, edge: str, scope: dict[str, str], request: Request) -> dict[str, Any]:
        objects = [
            obj
            for obj in self._load(edge)
            if all(_scope_value(obj, key) == value for key, value in scope.items())
        ]
        objects = _filter_objects(edge, objects, request)
        fields = _fields(request)
        page, paging = _page(objects, request)
        return {"data": [_select_fields(edge, obj, fields) for obj in page], **paging}

    # --- insights ----------------------------------------------------------------------------

    def _insights(self, scope: dict[str, str], node_level: str, request: Request) -> dict[str, Any]:
        spec = self._parse_insights(scope, node_level, request)
        keys = LEVEL_KEYS[spec.level]
        start, count, limit = _window(request)
        rows: list[dict[str, Any]] = []
        if self.insights_path.is_file():
            period_start, period_end = _period_sql(spec.increment)
            names = [NAME_OF[k] for k in keys if k in NAME_OF]
            group_cols = [*keys, *spec.breakdowns]
            select = [
                *(f"{k}::VARCHAR AS {k}" for k in group_cols),
                *(f"arg_max({n}, d) AS {n}" for n in names),
                f"{period_start} AS period_start",
                f"{period_end} AS period_end",
                "sum(impressions)::BIGINT AS impressions",
                "sum(reach)::BIGINT AS reach",
                "sum(clicks)::BIGINT AS clicks",
                "sum(spend)::DOUBLE AS spend",
                "sum(purchases)::BIGINT AS purchases",
                "sum(purchase_value)::DOUBLE AS purchase_value",
            ]
            order = ["period_start", *group_cols]
            sql = (
                f"SELECT {', '.join(select)} FROM ("
                "SELECT * REPLACE (replace(account_id::VARCHAR, 'act_', '') AS account_id), "
                f"date_start::DATE AS d FROM {parquet_sql(self.insights_path)}) "
                f"WHERE d BETWEEN $since AND $until AND ({spec.where_sql}) "
                f"GROUP BY ALL "
                "HAVING sum(impressions) > 0 OR sum(spend) > 0 OR sum(purchases) > 0 "
                f"ORDER BY {', '.join(order)} LIMIT {count + 1} OFFSET {start}"
            )
            with connect() as con:
                cursor = con.execute(sql, spec.params())
                columns = [c[0] for c in cursor.description]
                rows = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
        has_next = len(rows) > count
        data = [_insight_row(row, spec) for row in rows[:count]]
        return {"data": data, **_paging(request, start, len(data), limit, has_next)}

    def _parse_insights(self, scope: dict[str, str], node_level: str, request: Request) -> Insights:
        q = request.query
        level = q.get("level", node_level)
        if level not in LEVELS:
            raise _param_error(f"level must be one of the following values: {', '.join(LEVELS)}")
        if LEVELS.index(level) < LEVELS.index(node_level):
            raise _param_error(f"level {level} is above the queried node ({node_level})")
        fields = _split(q.get("fields", "")) or list(DEFAULT_INSIGHT_FIELDS)
        for name in fields:
            if name not in INSIGHT_FIELDS:
                raise _param_error(
                    f"{name} is not valid for fields param. please check "
                    "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ "
                    "for all valid values"
                )
        breakdowns = _split(q.get("breakdowns", ""))
        for name in breakdowns:
            if name not in BREAKDOWNS:
                raise _param_error(
                    f"The local Meta fake supports breakdowns={','.join(BREAKDOWNS)} only; "
                    f"got {name}"
                )
        if q.get("action_breakdowns", "action_type") not in ("action_type", ""):
            raise _param_error("The local Meta fake supports action_breakdowns=action_type only")
        if "time_ranges" in q:
            raise _param_error("time_ranges is not supported by the local Meta fake")
        since, until = self._time_range(q)
        increment = q.get("time_increment", "all_days")
        if increment not in ("all_days", "monthly") and not (
            increment.isdigit() and 1 <= int(increment) <= 90
        ):
            raise _param_error("time_increment must be all_days, monthly or an integer 1-90")

        clauses, params = [], []
        for key, value in scope.items():
            clauses.append(f"{key}::VARCHAR = ?")
            params.append(value)
        for flt in _json_param(q, "filtering") or []:
            sql, values = _insight_filter(flt)
            clauses.append(sql)
            params += values
        return Insights(
            level=level,
            fields=fields,
            breakdowns=breakdowns,
            since=since,
            until=until,
            increment=increment,
            where_sql=" AND ".join(_number_placeholders(clauses)) or "TRUE",
            where_params=params,
        )

    def _time_range(self, q: dict[str, str]) -> tuple[date, date]:
        if "time_range" in q:
            raw = _json_param(q, "time_range")
            try:
                since = date.fromisoformat(raw["since"])
                until = date.fromisoformat(raw["until"])
            except (TypeError, KeyError, ValueError):
                raise _param_error(
                    'time_range must be a JSON object like {"since":"YYYY-MM-DD",'
                    '"until":"YYYY-MM-DD"}'
                ) from None
            if since > until:
                raise _param_error("time_range's since must not be after until")
            return since, until
        preset = q.get("date_preset", "last_30d")
        today = self.today()
        if preset in DATE_PRESETS:
            first, last = DATE_PRESETS[preset]
            return today - timedelta(days=first), today - timedelta(days=last)
        if preset == "this_month":
            return today.replace(day=1), today
        if preset == "last_month":
            last = today.replace(day=1) - timedelta(days=1)
            return last.replace(day=1), last
        if preset == "maximum":  # from the first day with delivery
            first = today
            if self.insights_path.is_file():
                with connect() as con:
                    sql = f"SELECT min(date_start::DATE) FROM {parquet_sql(self.insights_path)}"
                    first = con.execute(sql).fetchone()[0] or today
            return min(first, today), today
        raise _param_error(f"date_preset {preset} is not supported by the local Meta fake")


# --- helpers ------------------------------------------------------------------------------------


def _audience_body(request: Request) -> dict[str, Any]:
    """Parameters of a membership request: JSON body, form body, then the query string."""
    params: dict[str, Any] = dict(request.query)
    if request.body:
        if "json" in request.headers.get("content-type", ""):
            try:
                body = json.loads(request.body)
            except ValueError:
                raise _param_error("The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise _param_error("The request body must be a JSON object")
            params |= body
        else:
            params |= dict(parse_qsl(request.body.decode("utf-8", "replace")))
    return params


def _unsupported(request: Request, node: str) -> GraphError:
    return GraphError(
        f"Unsupported {request.method.lower()} request. Object with ID '{node}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation. "
        "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        100,
        type_="GraphMethodException",
        subcode=33,
    )


def _account_id(obj: dict[str, Any]) -> str:
    return str(obj.get("account_id", "")).removeprefix("act_")


def _scope_value(obj: dict[str, Any], key: str) -> str:
    if key == "account_id":
        return _account_id(obj)
    if key == f"{_level_of(obj)}_id":
        return str(obj.get("id"))
    return str(obj.get(key, ""))


def _level_of(obj: dict[str, Any]) -> str:
    if "adset_id" in obj:
        return "ad"
    if "campaign_id" in obj:
        return "adset"
    return "campaign"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _json_param(q: dict[str, str], name: str) -> Any:
    if name not in q:
        return None
    try:
        return json.loads(q[name])
    except ValueError:
        raise _param_error(f"Param {name} must be a valid JSON") from None


def _fields(request: Request) -> list[str]:
    fields = _split(request.query.get("fields", ""))
    for name in fields:
        if "{" in name or "." in name:
            raise _param_error(f"Nested field requests ({name}) are not supported by the fake")
    return fields


def _select_fields(edge: str, obj: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    allowed = OBJECT_FIELDS[edge] | set(obj)
    for name in fields:
        if name not in allowed:
            raise _param_error(
                f"Tried accessing nonexisting field ({name}) on node type ({NODE_TYPES[edge]})"
            )
    return {name: obj[name] for name in dict.fromkeys(["id", *fields]) if name in obj}


def _filter_objects(
    edge: str, objects: list[dict[str, Any]], request: Request
) -> list[dict[str, Any]]:
    """`effective_status` (a JSON list; without it DELETED and ARCHIVED objects are hidden, as
    Meta hides them) and `filtering` ([{"field", "operator", "value"}])."""
    statuses = _json_param(request.query, "effective_status")
    if statuses is None:
        objects = [o for o in objects if o.get("effective_status") not in HIDDEN_BY_DEFAULT]
    else:
        if not isinstance(statuses, list):
            raise _param_error("Param effective_status must be an array")
        objects = [o for o in objects if o.get("effective_status") in statuses]
    for flt in _json_param(request.query, "filtering") or []:
        if not isinstance(flt, dict) or flt.get("operator") not in FILTER_OPERATORS:
            raise _param_error(
                "Filtering entries need field, operator (one of "
                f"{', '.join(FILTER_OPERATORS)}) and value"
            )
        field, op, value = flt.get("field"), flt["operator"], flt.get("value")
        if field not in OBJECT_FIELDS[edge] and not any(field in o for o in objects):
            raise _param_error(f"Filtering field {field} is invalid")
        objects = [o for o in objects if _passes(o.get(field), op, value)]
    return objects


def _comparable(value: Any) -> Any:
    """Graph times ('2025-03-01T10:00:00+0700') as unix seconds, numeric strings as numbers."""
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _passes(actual: Any, op: str, value: Any) -> bool:
    if op in ("IN", "NOT_IN"):
        found = actual in (value or [])
        return found if op == "IN" else not found
    if op in ("CONTAIN", "NOT_CONTAIN"):
        found = str(value).lower() in str(actual or "").lower()
        return found if op == "CONTAIN" else not found
    if actual is None:
        return op == "NOT_EQUAL"
    a, v = _comparable(actual), _comparable(value)
    try:
        return {
            "EQUAL": a == v,
            "NOT_EQUAL": a != v,
            "GREATER_THAN": a > v,
            "GREATER_THAN_OR_EQUAL": a >= v,
            "LESS_THAN": a < v,
            "LESS_THAN_OR_EQUAL": a <= v,
        }[op]
    except TypeError:
        return False


def _insight_filter(flt: Any) -> tuple[str, list[Any]]:
    columns = {
        "campaign.id": "campaign_id",
        "adset.id": "adset_id",
        "ad.id": "ad_id",
        "publisher_platform": "publisher_platform",
    }
    if not isinstance(flt, dict) or flt.get("field") not in columns:
        raise _param_error(f"The local Meta fake filters insights on {', '.join(columns)} only")
    column, op, value = columns[flt["field"]], flt.get("operator"), flt.get("value")
    if op in ("EQUAL", "NOT_EQUAL"):
        return f"{column}::VARCHAR {'=' if op == 'EQUAL' else '<>'} ?", [str(value)]
    if op in ("IN", "NOT_IN") and isinstance(value, list) and value:
        marks = ", ".join("?" * len(value))
        return f"{column}::VARCHAR {'IN' if op == 'IN' else 'NOT IN'} ({marks})", [
            str(v) for v in value
        ]
    raise _param_error("Insights filtering supports EQUAL, NOT_EQUAL, IN and NOT_IN")


def _number_placeholders(clauses: list[str]) -> list[str]:
    """`?` -> `$p0, $p1, ...` (the insights query binds named parameters)."""
    counter = itertools.count()
    return [re.sub(r"\?", lambda _: f"$p{next(counter)}", c) for c in clauses]


def _period_sql(increment: str) -> tuple[str, str]:
    if increment == "all_days":
        return "$since", "$until"
    if increment == "monthly":
        return (
            "greatest(date_trunc('month', d)::DATE, $since)",
            "least(last_day(d), $until)",
        )
    n = int(increment)
    start = f"($since + (((d - $since) // {n}) * {n})::INTEGER)"
    return start, f"least({start} + {n - 1}, $until)"


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> str | None:
    if not denominator:
        return None
    return f"{numerator * scale / denominator:.6f}".rstrip("0").rstrip(".")


def _insight_row(row: dict[str, Any], spec: Insights) -> dict[str, Any]:
    out: dict[str, Any] = {}
    impressions, clicks, spend = row["impressions"], row["clicks"], row["spend"] or 0.0
    purchases, value = row["purchases"] or 0, row["purchase_value"] or 0.0
    for name in spec.fields:
        if name in ("date_start", "date_stop"):
            continue
        if name in row and name in LEVEL_KEYS["ad"] + tuple(NAME_OF.values()):
            out[name] = row[name]
        elif name in ("impressions", "reach", "clicks"):
            out[name] = str(int(row[name] or 0))
        elif name == "spend":
            out[name] = format_money(spend)
        elif name == "account_currency":
            out[name] = CURRENCY
        elif name == "actions" and purchases:
            out[name] = [{"action_type": t, "value": str(purchases)} for t in PURCHASE_ACTION_TYPES]
        elif name == "action_values" and purchases:
            out[name] = [
                {"action_type": t, "value": format_money(value)} for t in PURCHASE_ACTION_TYPES
            ]
        elif name == "ctr" and _ratio(clicks, impressions, 100):
            out[name] = _ratio(clicks, impressions, 100)
        elif name == "cpc" and _ratio(spend, clicks):
            out[name] = _ratio(spend, clicks)
        elif name == "cpm" and _ratio(spend, impressions, 1000):
            out[name] = _ratio(spend, impressions, 1000)
        elif name == "frequency" and _ratio(impressions, row["reach"]):
            out[name] = _ratio(impressions, row["reach"])
    out["date_start"] = row["period_start"].isoformat()
    out["date_stop"] = row["period_end"].isoformat()
    for name in spec.breakdowns:
        out[name] = row[name]
    return out


# --- paging -------------------------------------------------------------------------------------


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{index}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, index = text.partition(":")
        if prefix != "cursor":
            raise ValueError
        return int(index)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _param_error("Invalid cursor") from None


def _window(request: Request) -> tuple[int, int, int]:
    """(first index, items wanted, limit) from `limit` and `after` or `before`: `after` points
    at the last item of the previous page, `before` at the first item of the next one."""
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or int(raw) < 1:
        raise _param_error("Param limit must be a positive integer")
    limit = int(raw)
    if request.query.get("after"):
        return _decode_cursor(request.query["after"]) + 1, limit, limit
    if request.query.get("before"):
        end = _decode_cursor(request.query["before"])
        start = max(0, end - limit)
        return start, end - start, limit
    return 0, limit, limit


def _page(items: list[Any], request: Request) -> tuple[list[Any], dict[str, Any]]:
    start, count, limit = _window(request)
    page = items[start : start + count]
    return page, _paging(request, start, len(page), limit, start + len(page) < len(items))


def _paging(request: Request, start: int, count: int, limit: int, has_next: bool) -> dict[str, Any]:
    """Graph cursor paging: cursors point at the first and last items of this page; `next` and
    `previous` are full URLs that repeat the request's parameters."""
    if count == 0:
        return {}
    before, after = _encode_cursor(start), _encode_cursor(start + count - 1)
    paging: dict[str, Any] = {"cursors": {"before": before, "after": after}}
    base = {k: v for k, v in request.query.items() if k not in ("after", "before", "limit")}
    url = f"http://{request.host}{request.path}?"
    if start > 0:
        paging["previous"] = url + urlencode({**base, "limit": limit, "before": before})
    if has_next:
        paging["next"] = url + urlencode({**base, "limit": limit, "after": after})
    return {"paging": paging}
