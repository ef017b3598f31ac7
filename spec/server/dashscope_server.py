#!/usr/bin/env python3
"""A local stand-in for DashScope's async video-synthesis service, for lua-dashscope's test suite.

Owns: the wire behaviour of docs/protocol.md §13 (submit, query, cancel, list, detect,
temporary upload, result download) on loopback, plus the /__control API that tests use to reset,
configure, inject faults and read what the client sent. Standard library only (Python 3.11+).
Must not: reach the network, keep state on disk (except the --port-file and its .upload/.results
siblings), or log per request unless --verbose.

One process, one STATE, three listeners, because the real service has three origins and a client
must never send its API key to the two that are not DashScope's:
    api      /api/v1/... and /__control/...
    upload   the OSS upload host: the multipart POST at "/" (getPolicy's upload_host)
    results  the result-file host: GET/HEAD /results/<id>.mp4?Expires=...&Signature=x
A request sent to the wrong listener answers 404, and every request on every listener but
/__control is logged with its host and headers.

Task state is computed from the clock at query time (no background threads): a task waits PENDING
until a slot of its model is free, then walks through its model's phases, then ends with its outcome.

    python3 spec/server/dashscope_server.py --port 0 --port-file FILE [--host 127.0.0.1] [--verbose]
        [--upload-port 0] [--results-port 0]
FILE gets the API port; FILE.upload and FILE.results (written first) get the other two.
"""

import argparse
import base64
import collections
import copy
import hashlib
import json
import math
import os
import random
import re
import signal
import socket
import select
import socketserver
import struct
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_API_KEY = "sk-test-0123456789abcdef"
TZ8 = timezone(timedelta(hours=8))  # the service's (presumed) timezone for task times
BASE = "/api/v1"
CONTROL = "/__control"


def default_config():
    return {
        "durations": {"pending": 0.0, "pre_processing": 0.05, "running": 0.2, "post_processing": 0.05},
        "durations_by_model": {},       # model -> partial durations
        "concurrency": 1,               # tasks running at once per model; 0 = unlimited
        "rate_limits": False,           # enforce rate_limit_rps
        "rate_limit_rps": {             # sliding 1 s windows (docs/protocol.md §10)
            "videoretalk": 1, "emoji-v1": 1, "liveportrait": 5,
            "emoji-detect-v1": 1, "liveportrait-detect": 5,
            "tasks": 20,                # query + cancel + list together
            "getPolicy": 100,           # per model
        },
        "outcome": None,                # {"status": "FAILED"|"UNKNOWN"|"SUCCEEDED", "code", "message"}
        "api_keys": [DEFAULT_API_KEY],
        "result_size": 65536,           # bytes served by /results/<id>.mp4
        "result_url_lifetime": 86400,   # a result URL's Expires = task end + this; later fetches get 403
        "policy_expire_seconds": 300,   # lifetime of an upload policy
        "task_ttl": 86400,              # after this a task answers UNKNOWN and leaves the list
        "latency": 0.0,                 # seconds every /api/v1 answer is held back (simulated network)
        "detect_outcome": None,         # None: "noface" in image_url fails; "pass"/"fail" force it
        "result_endless": False,        # results host: true streams a video body without end (a
                                        # number: that many bytes per second)
        "idle_close": 0.0,              # > 0: a keep-alive connection idle this long dies silently
    }


# --------------------------------------------------------------------------------------------
# Messages and per-model rules (data, read by one checker)
# --------------------------------------------------------------------------------------------

MSG_NO_KEY = "No API-key provided."
MSG_BAD_KEY = "Invalid API-key provided."
MSG_SYNC = "current user api does not support synchronous calls."
MSG_ASYNC = "Current user api does not support asynchronous calls."
MSG_BODY = "Required body invalid, please check the request body format."
MSG_MODEL = "Model can not be found."
MSG_RATE = "Requests rate limit exceeded, please try again later."
MSG_CANCEL = "Failed to cancel the task, please confirm if the task is in PENDING status."
MSG_BAD_URL = ("InternalError.Algo.InvalidParameter: The provided URL does not appear to be valid. "
               "Ensure it is correctly formatted.")
MSG_DATA_INSPECTION = "The media format is not supported or incorrect for the data inspection."
MSG_URL_EXPIRED = "Request has expired."     # what OSS says for a signed URL past its Expires
MSG_CONTENT = ("The input image has no human body or multi human bodies. "
               "Please upload other image with single person.")
MSG_PARAM = "Required parameter({field}) missing or invalid, please check the request parameters."
MSG_OUT_OF_DEF = "The type or value of {field} is out of definition."
MSG_NO_FACE = "No human face detected."
MSG_FACE_POSE = "The pose of the detected face is invalid, please upload other image with the expected oriention."

# Wrong type or range: (code, message template) per model family.
INVALID_GENERIC = ("InvalidParameter", MSG_PARAM)
INVALID_LIVEPORTRAIT = ("InvalidParamter.OutOfDefinition", MSG_OUT_OF_DEF)  # the docs' spelling

DRIVEN_IDS = (
    "mengwa_kaixin", "mengwa_dengyan", "mengwa_gandong", "mengwa_renzhen_1", "mengwa_jidong",
    "mengwa_kun_1", "mengwa_jiaoxie",
    "dagong_kaixin", "dagong_yangwang", "dagong_kunhuo", "dagong_zhuakuang", "dagong_wunai",
    "dagong_weixiao", "dagong_ganji",
    "jingdian_tiaopi", "jingdian_deyi_1", "jingdian_qidai", "jingdian_landuo_1", "jingdian_xianqi",
    "jingdian_lei",
)


def field(path, kind, required=False, error=None, **rule):
    """One field rule. kind: url, url_or_empty, bool, int, number, enum, bbox.
    rule: min/max (int, number), values (enum). error: (code, message) for a wrong value."""
    return {"path": path, "kind": kind, "required": required, "error": error, **rule}


def emoji_boxes_fit(body):
    """ext_bbox must contain face_bbox (docs/protocol.md §3.2: larger than the face)."""
    face, ext = body["input"]["face_bbox"], body["input"]["ext_bbox"]
    if ext[0] <= face[0] and ext[1] <= face[1] and ext[2] >= face[2] and ext[3] >= face[3]:
        return None
    return "InvalidParameter", "Invalid ext_bbox"


SUBMIT_MODELS = {
    "videoretalk": {
        "fields": [
            field("input.video_url", "url", required=True),
            field("input.audio_url", "url", required=True),
            field("input.ref_image_url", "url_or_empty"),
            field("parameters.video_extension", "bool"),
            field("parameters.query_face_threshold", "int", min=120, max=200),
        ],
        "invalid": INVALID_GENERIC,
        "phases": ("PRE-PROCESSING", "RUNNING", "POST-PROCESSING"),
        "result_at": "video_url",
        "usage": {"video_duration": 7.2, "size": "1080*1920", "video_ratio": "standard", "fps": 25},
        "upload_mb": 300,
    },
    "emoji-v1": {
        "fields": [
            field("input.image_url", "url", required=True),
            field("input.face_bbox", "bbox", required=True, error=("InvalidParameter", "Invalid face_bbox")),
            field("input.ext_bbox", "bbox", required=True, error=("InvalidParameter", "Invalid ext_bbox")),
            field("input.driven_id", "enum", required=True, values=DRIVEN_IDS,
                  error=("InvalidParameter", "Driven not exist: driven_id")),
        ],
        "checks": [emoji_boxes_fit],
        "invalid": INVALID_GENERIC,
        "phases": ("RUNNING",),
        "result_at": "video_url",
        "usage": {"video_duration": 2, "video_ratio": "standard"},
        "upload_mb": 10,
    },
    "liveportrait": {
        "fields": [
            field("input.image_url", "url", required=True),
            field("input.audio_url", "url", required=True),
            field("parameters.template_id", "enum", values=("normal", "calm", "active")),
            field("parameters.eye_move_freq", "number", min=0, max=1),
            field("parameters.video_fps", "int", min=15, max=30),
            field("parameters.mouth_move_strength", "number", min=0, max=1.5),
            field("parameters.paste_back", "bool"),
            field("parameters.head_move_strength", "number", min=0, max=1),
        ],
        "invalid": INVALID_LIVEPORTRAIT,
        "phases": ("RUNNING",),
        "result_at": "results.video_url",
        "usage": {"video_duration": 2.79, "video_ratio": "standard"},
        "upload_mb": 15,
    },
}

# Any model named test-* : no validation, result in output.video_url.
GENERIC_MODEL = {
    "fields": [], "invalid": INVALID_GENERIC, "phases": ("RUNNING",), "result_at": "video_url",
    "usage": {"video_duration": 1.5, "video_ratio": "standard"}, "upload_mb": 100,
}

DETECT_MODELS = {
    "liveportrait-detect": {
        "fields": [field("input.image_url", "url", required=True)],
        "invalid": INVALID_LIVEPORTRAIT,
        "passed": {"pass": True, "message": ""},
        "not_passed": {"pass": False, "message": MSG_NO_FACE},
        "upload_mb": 10,
    },
    "emoji-detect-v1": {
        "fields": [
            field("input.image_url", "url", required=True),
            field("parameters.ratio", "enum", required=True, values=("1:1",)),
        ],
        "invalid": INVALID_GENERIC,
        "passed": {"bbox_face": [212, 194, 460, 441], "ext_bbox_face": [63, 30, 609, 575]},
        "not_passed": {"code": "InvalidFile.FacePose", "message": MSG_FACE_POSE},
        "upload_mb": 10,
    },
}

PHASE_DURATION_KEY = {"PRE-PROCESSING": "pre_processing", "RUNNING": "running",
                      "POST-PROCESSING": "post_processing"}
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN")

# Defaults for a "status" fault that names only the HTTP status.
FAULT_STATUS_DEFAULTS = {
    400: ("InvalidParameter", "The request parameter is invalid."),
    401: ("InvalidApiKey", MSG_BAD_KEY),
    403: ("AccessDenied", "Access denied."),
    404: ("ModelNotFound", MSG_MODEL),
    429: ("Throttling.RateQuota", MSG_RATE),
    500: ("InternalError", "An internal error has occurred, please try again later or contact service support."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Model is unavailable, please try again later."),
    504: ("GatewayTimeout", "Gateway timeout."),
}
# All replace the answer before the request is processed (so a faulted submit creates nothing) but
# slow (sleeps, then processes) and lost (processes, then closes without answering: the task exists).
FAULT_KINDS = ("status", "garbage", "truncated", "slow", "drop", "badjson", "lost", "hang", "oversized", "reset")
# Rounding allowed when probabilities are summed: a split meant to fill [0, 1) may add up to a hair over 1.
PROBABILITY_SLACK = 1e-9
REQUEST_KINDS = ("submit", "query", "cancel", "list", "detect", "upload", "oss", "result", "other")
HOSTS = ("api", "upload", "results")    # the listeners, in port-file order
DETECT_OUTCOMES = (None, "pass", "fail")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def new_id():
    return str(uuid.uuid4())


def fmt_time(epoch):
    """YYYY-MM-DD HH:mm:ss.SSS in UTC+8, as the task query shows times."""
    d = datetime.fromtimestamp(epoch, TZ8)
    return d.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (d.microsecond // 1000)


def epoch_ms(epoch):
    return int(round(epoch * 1000))


def parse_list_time(text):
    """YYYYMMDDhhmmss in UTC+8 -> epoch seconds, or None."""
    if not re.fullmatch(r"\d{14}", text or ""):
        return None
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=TZ8).timestamp()
    except ValueError:
        return None


def api_key_id(key):
    return str(100000 + int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 900000)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def walk_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


def get_path(body, path):
    """(present, value) for a dotted path such as input.video_url; JSON null counts as absent."""
    node = body
    for part in path.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return False, None
        node = node[part]
    return True, node


_result_cache = {}


def result_bytes(size):
    """The fake video: an MP4 ftyp box, then (i * 31 + 7) mod 256 for each following byte i."""
    if size not in _result_cache:
        head = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
        tail = bytes((i * 31 + 7) & 0xFF for i in range(max(0, size - len(head))))
        _result_cache[size] = (head + tail)[:size]
    return _result_cache[size]


def parse_multipart(body, content_type):
    """[(name, filename, content_type, bytes)] in order, or None when malformed."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "", re.I)
    if not m or not content_type.lower().startswith("multipart/form-data"):
        return None
    delim = b"--" + m.group(1).encode("latin-1")
    pos = body.find(delim)
    if pos < 0:
        return None
    pos += len(delim)
    parts = []
    while body[pos:pos + 2] != b"--":
        if body[pos:pos + 2] != b"\r\n":
            return None
        head_end = body.find(b"\r\n\r\n", pos + 2)
        if head_end < 0:
            return None
        head = body[pos + 2:head_end].decode("latin-1")
        end = body.find(b"\r\n" + delim, head_end + 4)
        if end < 0:
            return None
        headers = {}
        for line in head.split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        disp = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disp)
        filename = re.search(r'\bfilename="([^"]*)"', disp)
        parts.append((name.group(1) if name else "", filename.group(1) if filename else None,
                      headers.get("content-type"), body[head_end + 4:end]))
        pos = end + 2 + len(delim)
    return parts


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------

class Reply:
    """What to send. mode: normal, truncated (half the body, then close), drop (close, no answer) or
    endless (no Content-Length, bytes until the client goes: `rate` bytes/s, or None: at once)."""

    def __init__(self, status, body=b"", content_type="application/json", headers=None, mode="normal"):
        self.status, self.body, self.content_type = status, body, content_type
        self.headers, self.mode = headers or {}, mode
        self.rate = None


def json_reply(status, obj, headers=None):
    return Reply(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers=headers)


def error_reply(status, code, message, headers=None):
    """The §9 error body."""
    return json_reply(status, {"code": code, "message": message, "request_id": new_id()}, headers)


def xml_text(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;")


def oss_error(status, code, message, extra=()):
    """OSS's XML error body; extra: (element, text) pairs after HostId, as OSS adds for some codes."""
    more = "".join("  <%s>%s</%s>\n" % (k, xml_text(v), k) for k, v in extra)
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>%s</Code>\n  <Message>%s</Message>\n'
            '  <RequestId>%s</RequestId>\n  <HostId>127.0.0.1</HostId>\n%s</Error>\n'
            % (code, xml_text(message), uuid.uuid4().hex.upper()[:24], more))
    return Reply(status, body.encode(), "application/xml")


# --------------------------------------------------------------------------------------------
# State (one lock)
# --------------------------------------------------------------------------------------------

class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.generation = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.generation += 1          # connections are counted once per generation
            self.config = default_config()
            self.tasks = {}               # task_id -> task dict
            self.order = []               # task ids in submit order
            self.log = []
            self.faults = []              # one-shot (count) and probabilistic (probability) entries, in order
            self.fault_rng = random.Random()    # draws for probabilistic faults only; POST /faults seeds it
            self.submit_bodies = {}       # canonical submit body -> first task created with it
            self.windows = {}             # rate-limit name -> [admitted times]
            self.policies = {}            # policy string -> upload policy
            self.objects = {}             # uploaded key -> object
            self.stats = {"requests": 0, "connections": 0, "connections_accepted": 0, "submits": 0,
                          "duplicate_submits": 0, "idle_closed": 0, "faults_applied": {k: 0 for k in FAULT_KINDS},
                          "by_kind": {k: 0 for k in REQUEST_KINDS}, "by_host": {h: 0 for h in HOSTS},
                          "max_per_second": {}, "throttled": {}}
            self.arrivals = {}            # rate-limit name -> deque of arrival times in the last 1 s

    # --- request rates, whatever the limits (for /__control/stats max_per_second) ---
    def count_arrival(self, name, now):
        """Counts a request under `name` (a rate_limit_rps key, with ":model" for getPolicy) and keeps
        the largest number that arrived within any sliding 1 s window, 429s included."""
        with self.lock:
            window = self.arrivals.setdefault(name, collections.deque())
            window.append(now)
            while window and window[0] <= now - 1.0:
                window.popleft()
            best = self.stats["max_per_second"]
            best[name] = max(best.get(name, 0), len(window))

    def reveal(self, tasks, now):
        """Marks `tasks` (terminal in an answer being sent at `now`) as seen by the client."""
        with self.lock:
            for task in tasks:
                if task.get("seen_at") is None:
                    task["seen_at"] = now

    # --- rate limits ---
    def admit(self, name, now):
        """False when the sliding 1 s window of `name` is full (and rate limits are on).
        `name` is a rate_limit_rps key, optionally with a ":model" suffix for a per-model window."""
        with self.lock:
            limit = self.config["rate_limit_rps"].get(name.split(":")[0])
            if not self.config["rate_limits"] or limit is None:
                return True
            window = [t for t in self.windows.get(name, []) if t > now - 1.0]
            self.windows[name] = window
            if len(window) >= limit:
                throttled = self.stats["throttled"]  # 429s for rate limits, by max_per_second's names
                throttled[name] = throttled.get(name, 0) + 1
                return False
            window.append(now)
            return True

    # --- faults ---
    def take_fault(self, kind, path=""):
        """A copy of the fault that applies to a request of `kind` to `path`, or None (and counts it
        applied). One-shot faults come first, so a test can force one answer amid a probabilistic
        background."""
        with self.lock:
            fault = self.take_one_shot(kind, path) or self.draw_fault(kind)
            if fault:
                self.stats["faults_applied"][fault["kind"]] += 1
            return fault

    def take_one_shot(self, kind, path=""):
        """The first pending count fault that matches (its `path`, if it has one, within the request's
        path), consumed by one."""
        for fault in self.faults:
            if "count" in fault and fault["match"] in ("any", kind) and fault.get("path", "") in path:
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self.faults.remove(fault)
                return dict(fault)
        return None

    def draw_fault(self, kind):
        """The probabilistic faults that match are exclusive: one draw u in [0, 1), and the first whose
        cumulative probability exceeds u applies (0.2, 0.2, 0.1 split 20/20/10/50). No draw when none
        match, so a seeded run's sequence depends only on the requests that can get such a fault."""
        entries = [f for f in self.faults if "probability" in f and f["match"] in ("any", kind)]
        if not entries:
            return None
        u, bound = self.fault_rng.random(), 0.0
        for fault in entries:
            bound += fault["probability"]
            if u < bound:
                fault["applied"] += 1
                return dict(fault)
        return None

    # --- tasks ---
    def create_task(self, model, rule, body, key, request_id, now):
        cfg = self.config
        durations = dict(cfg["durations"])
        durations.update(cfg["durations_by_model"].get(model, {}))
        strings = list(walk_strings(body.get("input")))
        for s in strings:
            m = re.search(r"__duration=([0-9]*\.?[0-9]+)__", s)
            if m:
                durations["running"] = float(m.group(1))
        outcome = dict(cfg["outcome"] or {"status": "SUCCEEDED"})
        if any("__fail__" in s for s in strings):
            outcome = {"status": "FAILED", "code": "InvalidFile.Content", "message": MSG_CONTENT}
        if any("__unknown__" in s for s in strings):
            outcome = {"status": "UNKNOWN"}
        lies = sorted({m for s in strings for m in re.findall(r"__lie=(run|submit|scheduled)__", s)})
        phases = [(p, float(durations[PHASE_DURATION_KEY[p]])) for p in rule["phases"]]
        task = {
            "task_id": new_id(), "model": model, "request_id": request_id, "api_key": key,
            "submitted": now, "ready": now + float(durations["pending"]), "phases": phases,
            "total": sum(d for _, d in phases), "started": None, "ended": None, "canceled": None,
            "outcome": outcome, "input": body.get("input"), "parameters": body.get("parameters"),
            "result_at": rule["result_at"], "usage": rule["usage"],
            "seen_at": None,    # when an answer first showed the client its terminal status
            "lies": lies,       # which of its times its answers falsify (see lying_times)
        }
        self.tasks[task["task_id"]] = task
        self.order.append(task["task_id"])
        self.stats["submits"] += 1
        # The same job created twice (a client that resubmits after a lost answer or a 5xx) is what
        # duplicate_submits counts: the body's content, not its bytes, names the job.
        canonical = json.dumps({"model": model, "input": body.get("input"), "parameters": body.get("parameters")},
                               sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        first = self.submit_bodies.setdefault(canonical, task["task_id"])
        task["duplicate_of"] = None if first == task["task_id"] else first
        if task["duplicate_of"]:
            self.stats["duplicate_submits"] += 1
        return task

    def advance(self, now):
        """Give a start time to every queued task whose slot has come by `now` (FIFO per model)."""
        c = self.config["concurrency"]
        by_model = {}
        for tid in self.order:
            t = self.tasks[tid]
            by_model.setdefault(t["model"], []).append(t)
        for tasks in by_model.values():
            ends = sorted((t["ended"] for t in tasks if t["started"] is not None), reverse=True)
            for t in tasks:
                if t["started"] is not None or t["canceled"] is not None:
                    continue
                start = t["ready"]
                if c > 0 and len(ends) >= c:
                    start = max(start, ends[c - 1])   # the c-th latest end frees a slot
                if start > now:
                    if c > 0:
                        break
                    continue
                t["started"], t["ended"] = start, start + t["total"]
                ends.append(t["ended"])
                ends.sort(reverse=True)

    def status(self, task, now):
        if now - task["submitted"] > self.config["task_ttl"]:
            return "EXPIRED"
        if task["canceled"] is not None:
            return "CANCELED"
        if task["started"] is None or now < task["started"]:
            return "PENDING"
        t = task["started"]
        for status, seconds in task["phases"]:
            t += seconds
            if now < t:
                return status
        return task["outcome"]["status"]

    def find(self, task_id, now):
        """(task, status) after advancing the clock; (None, None) for unknown or expired ids."""
        self.advance(now)
        task = self.tasks.get(task_id)
        if task is None:
            return None, None
        status = self.status(task, now)
        return (None, None) if status == "EXPIRED" else (task, status)


STATE = State()


# --------------------------------------------------------------------------------------------
# Validation shared by submit and detect
# --------------------------------------------------------------------------------------------

def check_value(spec, value):
    kind = spec["kind"]
    if kind in ("url", "url_or_empty"):
        if not isinstance(value, str):
            return "type"
        if value == "" and kind == "url_or_empty":
            return None
        return None if re.match(r"(?i)(https?|oss)://\S+$", value) else "url"
    if kind == "bool":
        return None if isinstance(value, bool) else "type"
    if kind in ("int", "number"):
        ok = is_int(value) if kind == "int" else is_number(value)
        if not ok or value < spec.get("min", -math.inf) or value > spec.get("max", math.inf):
            return "type"
        return None
    if kind == "enum":
        return None if isinstance(value, str) and value in spec["values"] else "type"
    if kind == "bbox":
        if (isinstance(value, list) and len(value) == 4 and all(is_int(v) and v >= 0 for v in value)
                and value[0] < value[2] and value[1] < value[3]):
            return None
        return "type"
    raise ValueError("unknown field kind " + kind)


def validate(rule, body):
    """None, or the error Reply for the first field that breaks the model's rules."""
    for name in ("input", "parameters"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            return error_reply(400, "InvalidParameter", MSG_PARAM.format(field=name))
    for spec in rule["fields"]:
        present, value = get_path(body, spec["path"])
        if not present or (spec["required"] and value == ""):
            if spec["required"]:
                return error_reply(400, "InvalidParameter", "Field required: " + spec["path"])
            continue
        problem = check_value(spec, value)
        if problem == "url":
            return error_reply(400, "invalid_parameter_error", MSG_BAD_URL)
        if problem:
            code, message = spec["error"] or rule["invalid"]
            return error_reply(400, code, message.format(field=spec["path"]))
    for check in rule.get("checks", ()):
        problem = check(body)
        if problem:
            return error_reply(400, *problem)
    return None


def check_oss(req, model, body):
    """oss:// URLs need the resolve header (without it the service tries to fetch the URL itself and
    fails inspecting it, §8.5), and name a file uploaded under a policy for this very model (§8.1:
    a detector is a model of its own, so a liveportrait upload is not liveportrait-detect's)."""
    oss = [s for s in walk_strings(body.get("input")) if s.startswith("oss://")]
    if not oss:
        return None
    if req.header("X-DashScope-OssResourceResolve").strip().lower() != "enable":
        return error_reply(400, "InvalidParameter.DataInspection", MSG_DATA_INSPECTION)
    with STATE.lock:
        for url in oss:
            obj = STATE.objects.get(url[len("oss://"):])
            if obj is None or obj["model"] != model:
                return error_reply(400, "invalid_parameter_error", MSG_BAD_URL)
    return None


def parse_body(req):
    """The JSON object body, or None."""
    return req.json if isinstance(req.json, dict) else None


def rate_name(kind, req):
    """The rate_limit_rps name a request counts under in max_per_second, or None."""
    if kind in ("query", "cancel", "list"):
        return "tasks"
    model = req.json.get("model") if isinstance(req.json, dict) else None
    if kind in ("submit", "detect") and isinstance(model, str) and model:
        return model
    if kind == "upload" and req.query.get("model"):
        return "getPolicy:" + req.query["model"]
    return None


def rate_limited(name, now):
    return None if STATE.admit(name, now) else error_reply(429, "Throttling.RateQuota", MSG_RATE)


# --------------------------------------------------------------------------------------------
# Endpoints: one function each. `req` is a Request; each returns a Reply.
# --------------------------------------------------------------------------------------------

def checked_body(req, models, generic=None):
    """The request's JSON body and its model's rule after every documented check, as
    (body, model, rule, None); or (None, None, None, error reply)."""
    body = parse_body(req)
    if body is None:
        return None, None, None, error_reply(400, "InvalidParameter", MSG_BODY)
    model = body.get("model")
    if model is None or model == "":
        return None, None, None, error_reply(400, "InvalidParameter", "Field required: model")
    rule = models.get(model) if isinstance(model, str) else None
    if rule is None and generic and isinstance(model, str) and model.startswith("test-"):
        rule = generic
    if rule is None:
        return None, None, None, error_reply(404, "ModelNotFound", MSG_MODEL)
    problem = rate_limited(model, req.now) or validate(rule, body) or check_oss(req, model, body)
    return body, model, rule, problem


def handle_submit(req):
    if req.header("X-DashScope-Async").lower() != "enable":
        return error_reply(403, "AccessDenied", MSG_SYNC)
    body, model, rule, problem = checked_body(req, SUBMIT_MODELS, GENERIC_MODEL)
    if problem:
        return problem
    request_id = new_id()
    with STATE.lock:
        task = STATE.create_task(model, rule, body, req.api_key, request_id, req.now)
    return json_reply(200, {"output": {"task_id": task["task_id"], "task_status": "PENDING"},
                            "request_id": request_id})


def result_url(task, hosts):
    """The signed result URL on the results host; Expires is fixed by the task's end, so every query
    of one task shows the same URL (while result_url_lifetime is unchanged)."""
    expires = int(task["ended"] + STATE.config["result_url_lifetime"])
    return "http://%s/results/%s.mp4?Expires=%d&Signature=x" % (hosts["results"], task["task_id"], expires)


LIE_FAR = "9999-12-31 23:59:59.999"
TEN_YEARS = 10 * 365.25 * 86400


def lying_times(task, out):
    """Falsifies the times of a task's answer as its input asked (`__lie=NAME__`): `run` puts end_time
    ten years after scheduled_time, `submit` and `scheduled` put that time in year 9999."""
    lies = task.get("lies") or ()
    if "submit" in lies and "submit_time" in out:
        out["submit_time"] = LIE_FAR
    if "scheduled" in lies and "scheduled_time" in out:
        out["scheduled_time"] = LIE_FAR
    if "run" in lies and "end_time" in out and task["started"] is not None:
        out["end_time"] = fmt_time(task["started"] + TEN_YEARS)
    return out


def task_output(task, status, hosts):
    out = {"task_id": task["task_id"], "task_status": status}
    if status == "UNKNOWN":
        return {"request_id": new_id(), "output": out}
    out["submit_time"] = fmt_time(task["submitted"])
    if status == "CANCELED":
        out["end_time"] = fmt_time(task["canceled"])
        return {"request_id": new_id(), "output": lying_times(task, out)}
    if status != "PENDING":
        out["scheduled_time"] = fmt_time(task["started"])
    if status not in TERMINAL:
        return {"request_id": new_id(), "output": lying_times(task, out)}
    out["end_time"] = fmt_time(task["ended"])
    lying_times(task, out)
    reply = {"request_id": new_id(), "output": out}
    if status == "FAILED":
        out["code"] = task["outcome"].get("code", "InvalidFile.Content")
        out["message"] = task["outcome"].get("message", MSG_CONTENT)
    elif status == "SUCCEEDED":
        url = result_url(task, hosts)
        if task["result_at"] == "results.video_url":
            out["results"] = {"video_url": url}
        else:
            out["video_url"] = url
        reply["usage"] = dict(task["usage"])
    return reply


def handle_query(req, task_id):
    problem = rate_limited("tasks", req.now)
    if problem:
        return problem
    with STATE.lock:
        task, status = STATE.find(task_id, req.now)
        if task is None:
            return json_reply(200, {"request_id": new_id(), "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
        if status in TERMINAL:
            req.reveals.append(task)
        return json_reply(200, task_output(task, status, req.hosts))


def handle_cancel(req, task_id):
    problem = rate_limited("tasks", req.now)
    if problem:
        return problem
    with STATE.lock:
        task, status = STATE.find(task_id, req.now)
        if task is None or status != "PENDING":
            return error_reply(400, "UnsupportedOperation", MSG_CANCEL)
        task["canceled"] = req.now
    return json_reply(200, {"request_id": new_id()})


def list_item(task, status):
    item = {
        "api_key_id": api_key_id(task["api_key"]), "caller_parent_id": "1000000000000000",
        "caller_uid": "1000000000000000", "gmt_create": epoch_ms(task["submitted"]),
        "model_name": task["model"], "region": "cn-beijing", "request_id": task["request_id"],
        "status": status, "task_id": task["task_id"],
        "user_api_unique_key": "apikey:v1:aigc:image2video:video-synthesis:" + task["model"],
    }
    if task["started"] is not None and task["canceled"] is None:
        item["start_time"] = epoch_ms(task["started"])
    if status in TERMINAL:
        item["end_time"] = epoch_ms(task["canceled"] if status == "CANCELED" else task["ended"])
    return item


def handle_list(req):
    problem = rate_limited("tasks", req.now)
    if problem:
        return problem
    q = req.query
    span = {}
    for name in ("start_time", "end_time"):
        if q.get(name):
            span[name] = parse_list_time(q[name])
            if span[name] is None:
                return error_reply(400, "InvalidParameter", MSG_PARAM.format(field=name))
    start, end = span.get("start_time"), span.get("end_time")
    if start is None and end is None:
        start, end = req.now - 86400, req.now
    elif start is None:
        start = end - 86400
    elif end is None:
        end = start + 86400
    paging = {}
    for name, default in (("page_no", 1), ("page_size", 10)):
        text = q.get(name) or str(default)
        if not re.fullmatch(r"\d+", text) or int(text) < 1:
            return error_reply(400, "InvalidParameter", MSG_PARAM.format(field=name))
        paging[name] = int(text)
    with STATE.lock:
        STATE.advance(req.now)
        items = []
        for tid in reversed(STATE.order):                          # newest first
            task = STATE.tasks[tid]
            status = STATE.status(task, req.now)
            if status == "EXPIRED" or not (start <= task["submitted"] < end + 1):
                continue
            item = list_item(task, status)
            if all(not q.get(k) or str(item.get(k)) == q[k]
                   for k in ("task_id", "status", "model_name", "api_key_id", "region")):
                items.append(item)
    size, page = paging["page_size"], paging["page_no"]
    with STATE.lock:
        req.reveals.extend(STATE.tasks[item["task_id"]] for item in items[(page - 1) * size:page * size]
                           if item["status"] in TERMINAL)
    return json_reply(200, {
        "total": len(items), "data": items[(page - 1) * size:page * size],
        "total_page": math.ceil(len(items) / size), "page_no": page,
        "request_id": new_id(), "page_size": size,
    })


def handle_detect(req):
    if req.header("X-DashScope-Async").lower() == "enable":
        return error_reply(403, "AccessDenied", MSG_ASYNC)
    body, _model, rule, problem = checked_body(req, DETECT_MODELS)
    if problem:
        return problem
    with STATE.lock:
        forced = STATE.config["detect_outcome"]
    passed = forced == "pass" if forced else "noface" not in body["input"]["image_url"]
    output = rule["passed"] if passed else rule["not_passed"]
    return json_reply(200, {"output": copy.deepcopy(output), "usage": {"image_count": 1}, "request_id": new_id()})


def upload_rule(model):
    if model in SUBMIT_MODELS:
        return SUBMIT_MODELS[model]
    if model in DETECT_MODELS:
        return DETECT_MODELS[model]
    return GENERIC_MODEL if model.startswith("test-") else None


def handle_get_policy(req):
    if req.query.get("action") != "getPolicy":
        return error_reply(400, "InvalidParameter", MSG_PARAM.format(field="action"))
    model = req.query.get("model") or ""
    if not model:
        return error_reply(400, "InvalidParameter", MSG_PARAM.format(field="model"))
    rule = upload_rule(model)
    if rule is None:
        return error_reply(404, "ModelNotFound", MSG_MODEL)
    problem = rate_limited("getPolicy:" + model, req.now)
    if problem:
        return problem
    with STATE.lock:
        lifetime = STATE.config["policy_expire_seconds"]
        upload_dir = "dashscope-instant/%s/%s/%s" % (
            hashlib.md5(req.api_key.encode()).hexdigest(),
            datetime.fromtimestamp(req.now, TZ8).strftime("%Y-%m-%d"), new_id())
        max_mb = rule["upload_mb"]
        doc = {"expiration": datetime.fromtimestamp(req.now + lifetime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
               "conditions": [["starts-with", "$key", upload_dir], ["content-length-range", 0, max_mb << 20]],
               "model": model}
        policy = base64.b64encode(json.dumps(doc).encode()).decode()
        signature = base64.b64encode(hashlib.sha1(policy.encode()).digest()).decode()
        STATE.policies[policy] = {"model": model, "upload_dir": upload_dir, "expires": req.now + lifetime,
                                  "signature": signature, "max_bytes": max_mb << 20}
    return json_reply(200, {"request_id": new_id(), "data": {
        "policy": policy, "signature": signature, "upload_dir": upload_dir,
        "upload_host": "http://%s" % req.hosts["upload"], "expire_in_seconds": lifetime,
        "max_file_size_mb": max_mb, "capacity_limit_mb": 999999999,
        "oss_access_key_id": "LTAItestaccesskey", "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true"}})


def handle_oss_post(req):
    """The OSS PostObject stand-in: multipart form, `file` last, policy from getPolicy."""
    parts = parse_multipart(req.body, req.header("Content-Type"))
    if parts is None:
        return oss_error(400, "MalformedPOSTRequest",
                         "The body of your POST request is not well-formed multipart/form-data.")
    names = [p[0] for p in parts]
    if "file" not in names:
        return oss_error(400, "InvalidArgument", "The file field is missing.")
    if names.index("file") != len(names) - 1:
        return oss_error(400, "InvalidArgument", "The file field must be the last form field.")
    fields = {p[0]: p[3].decode("utf-8", "replace") for p in parts[:-1]}
    for name in ("OSSAccessKeyId", "Signature", "policy", "key"):
        if not fields.get(name):
            return oss_error(400, "InvalidArgument", "Missing required field: " + name)
    content = parts[-1][3]
    with STATE.lock:
        pol = STATE.policies.get(fields["policy"])
        if pol is None:
            return oss_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed.")
        if fields["Signature"] != pol["signature"]:
            return oss_error(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you provided.")
        if req.now > pol["expires"]:
            return oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        key = fields["key"]
        if not key.startswith(pol["upload_dir"] + "/"):
            return oss_error(403, "AccessDenied",
                             'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "%s"]'
                             % pol["upload_dir"])
        if len(content) > pol["max_bytes"]:
            return oss_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        if key in STATE.objects:
            return oss_error(409, "FileAlreadyExists",
                             "The object you specified already exists and can not be overwritten.")
        STATE.objects[key] = {"key": key, "model": pol["model"], "size": len(content),
                              "content_type": fields.get("x-oss-content-type") or parts[-1][2],
                              "sha256": hashlib.sha256(content).hexdigest(), "time": req.now}
    status = fields.get("success_action_status", "204")
    if status == "200":
        return Reply(200, b"", None)
    if status == "201":
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Bucket>dashscope-file-test</Bucket>'
               '<Key>%s</Key></PostResponse>\n' % key)
        return Reply(201, xml.encode(), "application/xml")
    return Reply(204, b"", None)


def url_expired(req):
    """The 403 for a signed URL past its Expires (or with none: the object is private), else None.
    OSS checks the signature before it looks for the key, so this comes before any 404."""
    expires = req.query.get("Expires", "")
    if not re.fullmatch(r"\d+", expires) or not req.query.get("Signature"):
        return oss_error(403, "AccessDenied", "You have no right to access this object because of bucket acl.")
    if req.now > int(expires):
        iso = "%Y-%m-%dT%H:%M:%S.000Z"
        return oss_error(403, "AccessDenied", MSG_URL_EXPIRED, (
            ("Expires", datetime.fromtimestamp(int(expires), timezone.utc).strftime(iso)),
            ("ServerTime", datetime.fromtimestamp(req.now, timezone.utc).strftime(iso))))
    return None


def handle_result(req, task_id):
    """GET/HEAD /results/<id>.mp4: the fake video of a SUCCEEDED task (single byte ranges allowed)."""
    problem = url_expired(req)
    if problem:
        return problem
    with STATE.lock:
        task, status = STATE.find(task_id, req.now)
        size = STATE.config["result_size"]
    if task is None or status != "SUCCEEDED":
        return oss_error(404, "NoSuchKey", "The specified key does not exist.")
    with STATE.lock:
        endless = STATE.config["result_endless"]
    if endless is not False:
        reply = Reply(200, b"", "video/mp4", mode="endless")
        reply.rate = None if endless is True else endless
        return reply
    data = result_bytes(size)
    rng = re.fullmatch(r"bytes=(\d*)-(\d*)", req.header("Range").strip())
    if not rng or rng.groups() == ("", ""):
        return Reply(200, data, "video/mp4", {"Accept-Ranges": "bytes"})
    first, last = rng.groups()
    if first == "":
        first, last = max(0, size - int(last)), size - 1
    else:
        first, last = int(first), min(int(last) if last else size - 1, size - 1)
    if first >= size or first > last:
        return Reply(416, b"", "video/mp4", {"Content-Range": "bytes */%d" % size})
    return Reply(206, data[first:last + 1], "video/mp4",
                 {"Accept-Ranges": "bytes", "Content-Range": "bytes %d-%d/%d" % (first, last, size)})


# Routes per listener: (methods, pattern, request kind, handler, needs API key). A path of another
# listener is not here, so a request sent to the wrong host answers 404 (kind "other").
ROUTES = {
    "api": [
        (("POST",), BASE + r"/services/aigc/image2video/video-synthesis", "submit", handle_submit, True),
        (("POST",), BASE + r"/services/aigc/image2video/face-detect", "detect", handle_detect, True),
        (("GET",), BASE + r"/tasks", "list", handle_list, True),
        (("GET",), BASE + r"/tasks/([^/]+)", "query", handle_query, True),
        (("POST",), BASE + r"/tasks/([^/]+)/cancel", "cancel", handle_cancel, True),
        (("GET",), BASE + r"/uploads", "upload", handle_get_policy, True),
    ],
    "upload": [
        (("POST",), r"/", "oss", handle_oss_post, False),        # real OSS: POST {upload_host}
        (("POST",), r"/oss", "oss", handle_oss_post, False),     # the old upload_host, still taken
    ],
    "results": [
        (("GET", "HEAD"), r"/results/([^/]+)\.mp4", "result", handle_result, False),
    ],
}
ROUTES = {host: [(methods, re.compile(pattern + "$"), kind, fn, auth) for methods, pattern, kind, fn, auth in table]
          for host, table in ROUTES.items()}


def route(host, method, path):
    """(kind, handler, args, needs_auth) on listener `host`; handler None means 404, False 405."""
    for methods, pattern, kind, fn, auth in ROUTES[host]:
        m = pattern.match(path)
        if m:
            return kind, (fn if method in methods else False), [unquote(a) for a in m.groups()], auth
    return "other", None, [], host == "api" and (path.startswith(BASE + "/") or path == BASE)


def check_auth(req):
    """None when the Authorization header carries an accepted key (stored on req.api_key)."""
    scheme, _, key = req.header("Authorization").strip().partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    if not key:
        return error_reply(401, "InvalidApiKey", MSG_NO_KEY)
    with STATE.lock:
        accepted = key in STATE.config["api_keys"]
    if not accepted:
        return error_reply(401, "InvalidApiKey", MSG_BAD_KEY)
    req.api_key = key
    return None


def fault_reply(fault, kind, task_args):
    """The Reply that replaces the real answer for a fault (all kinds but slow and lost)."""
    k = fault["kind"]
    if k == "drop":
        return Reply(0, mode="drop")
    status = fault.get("status", 500 if k == "status" else 200)
    headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
    if k == "status" and "body" not in fault:
        code, message = FAULT_STATUS_DEFAULTS.get(status, ("InternalError", "Injected fault."))
        return error_reply(status, fault.get("code", code), fault.get("message", message), headers)
    ctype = "application/json"
    if "body" in fault:
        body = fault["body"].encode("utf-8")
    elif k == "garbage":
        body, ctype = b"<html>oops</html>", "text/html"
    elif k == "badjson":
        body = b'{"output": "x"}'
    elif kind == "result":   # truncated download: half of the real video
        body, ctype = result_bytes(STATE.config["result_size"]), "video/mp4"
    else:                    # truncated JSON: a plausible answer, cut in half
        body = json.dumps({"request_id": new_id(), "output": {
            "task_id": task_args[0] if task_args else new_id(), "task_status": "PENDING",
            "submit_time": fmt_time(time.time())}}).encode()
    return Reply(status, body, fault.get("content_type", ctype), headers,
                 mode="truncated" if k == "truncated" else "normal")


# --------------------------------------------------------------------------------------------
# Control API (no auth, never logged)
# --------------------------------------------------------------------------------------------

def validate_config(cfg):
    """Raise ValueError when a merged config is unusable."""
    def number(v, what):
        if not is_number(v) or v < 0:
            raise ValueError(what + " must be a non-negative number")
    for k, v in cfg["durations"].items():
        if k not in ("pending", "pre_processing", "running", "post_processing"):
            raise ValueError("unknown duration " + k)
        number(v, "durations." + k)
    for model, d in cfg["durations_by_model"].items():
        if not isinstance(d, dict):
            raise ValueError("durations_by_model.%s must be an object" % model)
        for k, v in d.items():
            if k not in cfg["durations"]:
                raise ValueError("unknown duration " + k)
            number(v, "durations_by_model.%s.%s" % (model, k))
    if not is_int(cfg["concurrency"]) or cfg["concurrency"] < 0:
        raise ValueError("concurrency must be an integer >= 0")
    cfg["concurrency"] = int(cfg["concurrency"])
    if not isinstance(cfg["rate_limits"], bool):
        raise ValueError("rate_limits must be a boolean")
    for k, v in cfg["rate_limit_rps"].items():
        if v is not None and (not is_int(v) or v < 0):
            raise ValueError("rate_limit_rps.%s must be an integer >= 0 or null" % k)
    out = cfg["outcome"]
    if out is not None:
        if not isinstance(out, dict) or out.get("status") not in ("SUCCEEDED", "FAILED", "UNKNOWN"):
            raise ValueError("outcome must be null or {status: SUCCEEDED|FAILED|UNKNOWN, code?, message?}")
        if out["status"] == "FAILED":
            out.setdefault("code", "InvalidFile.Content")
            out.setdefault("message", MSG_CONTENT)
    if not isinstance(cfg["api_keys"], list) or not all(isinstance(k, str) for k in cfg["api_keys"]):
        raise ValueError("api_keys must be a list of strings")
    if not is_int(cfg["result_size"]) or cfg["result_size"] < 0:
        raise ValueError("result_size must be an integer >= 0")
    cfg["result_size"] = int(cfg["result_size"])
    number(cfg["policy_expire_seconds"], "policy_expire_seconds")
    number(cfg["task_ttl"], "task_ttl")
    number(cfg["latency"], "latency")
    number(cfg["result_url_lifetime"], "result_url_lifetime")
    number(cfg["idle_close"], "idle_close")
    if cfg["detect_outcome"] not in DETECT_OUTCOMES:
        raise ValueError('detect_outcome must be null, "pass" or "fail"')
    endless = cfg["result_endless"]
    if not (isinstance(endless, bool) or (is_number(endless) and endless > 0)):
        raise ValueError("result_endless must be a boolean or a number of bytes per second > 0")


MERGED_KEYS = ("durations", "rate_limit_rps")   # objects merged key by key; others replaced


def control_config(method, body):
    with STATE.lock:
        if method == "GET":
            return json_reply(200, STATE.config)
        if not isinstance(body, dict):
            return json_reply(400, {"error": "expected a JSON object"})
        cfg = copy.deepcopy(STATE.config)
        for k, v in body.items():
            if k not in cfg:
                return json_reply(400, {"error": "unknown config key " + k})
            if k in MERGED_KEYS:
                if not isinstance(v, dict):
                    return json_reply(400, {"error": k + " must be an object"})
                cfg[k].update(v)
            elif k == "durations_by_model":
                if not isinstance(v, dict):
                    return json_reply(400, {"error": k + " must be an object"})
                for model, d in v.items():
                    if d is None:
                        cfg[k].pop(model, None)
                    elif isinstance(d, dict):
                        cfg[k].setdefault(model, {}).update(d)
                    else:
                        cfg[k][model] = d
            else:
                cfg[k] = copy.deepcopy(v)
        try:
            validate_config(cfg)
        except ValueError as e:
            return json_reply(400, {"error": str(e)})
        STATE.config = cfg
        return json_reply(200, cfg)


OVERSIZED_DEFAULT = {"body": 10 * 1024 * 1024, "headers": 100 * 1024}


def oversized(reply, fault):
    """The real answer made too big to read: its JSON padded with spaces to `size` bytes (still
    valid JSON), or `size` bytes of extra headers."""
    if fault["part"] == "body":
        body = reply.body + b" " * max(0, fault["size"] - len(reply.body))
        return Reply(reply.status, body, reply.content_type, reply.headers)
    headers, line = dict(reply.headers), "x" * 1000
    for i in range(fault["size"] // 1000 + 1):
        headers["X-Padding-%d" % i] = line
    return Reply(reply.status, reply.body, reply.content_type, headers)


def checked_fault(f):
    """The fault with its defaults filled in; ValueError when it is unusable."""
    if not isinstance(f, dict):
        raise ValueError("a fault must be an object")
    f = dict(f)
    f.setdefault("match", "any")
    if f["match"] not in REQUEST_KINDS + ("any",):
        raise ValueError("unknown match " + str(f["match"]))
    if f.get("kind") not in FAULT_KINDS:
        raise ValueError("unknown kind " + str(f.get("kind")))
    if "probability" in f:
        if "count" in f:
            raise ValueError("a fault takes count or probability, not both")
        if not is_number(f["probability"]) or not 0 < f["probability"] <= 1:
            raise ValueError("probability must be a number in (0, 1]")
        f["applied"] = 0      # times it triggered: 429s and 5xx are both kind status in faults_applied
    else:
        f.setdefault("count", 1)
        if not is_int(f["count"]) or f["count"] < 1:
            raise ValueError("count must be an integer >= 1")
    if "path" in f and ("probability" in f or not isinstance(f["path"], str)):
        raise ValueError("path must be a string, on a count fault")
    if "status" in f and (not is_int(f["status"]) or not 100 <= f["status"] <= 599):
        raise ValueError("status must be an HTTP status code")
    if f["kind"] in ("slow", "hang"):
        f.setdefault("delay", 1.0 if f["kind"] == "slow" else 30.0)
        if not is_number(f["delay"]) or f["delay"] < 0:
            raise ValueError("delay must be a non-negative number")
    if f["kind"] == "oversized":
        f.setdefault("part", "body")
        if f["part"] not in ("body", "headers"):
            raise ValueError('part must be "body" or "headers"')
        f.setdefault("size", OVERSIZED_DEFAULT[f["part"]])
        if not is_int(f["size"]) or not 0 < f["size"] <= 1 << 30:
            raise ValueError("size must be an integer in 1..2^30")
    return f


def overdrawn(faults):
    """Request kinds whose matching probabilistic faults add up to more than 1 (one draw picks among
    them, so more cannot be honoured)."""
    return [k for k in REQUEST_KINDS
            if sum(f["probability"] for f in faults if "probability" in f and f["match"] in ("any", k))
            > 1 + PROBABILITY_SLACK]


def control_faults(method, body):
    """GET lists the pending faults; POST {"faults": [...], "clear": bool, "seed": N} (or a bare list)
    adds to them. All or nothing: a bad fault changes neither the list nor the seed."""
    with STATE.lock:
        if method == "GET":
            return json_reply(200, STATE.faults)
        options = body if isinstance(body, dict) else {}
        faults = options.get("faults", []) if isinstance(body, dict) else body
        if not isinstance(faults, list):
            return json_reply(400, {"error": 'expected {"faults": [...]}'})
        seed = options.get("seed")
        try:
            checked = [checked_fault(f) for f in faults]
            if seed is not None and not is_int(seed):
                raise ValueError("seed must be an integer")
        except ValueError as e:
            return json_reply(400, {"error": str(e)})
        pending = ([] if options.get("clear") else STATE.faults) + checked
        over = overdrawn(pending)
        if over:
            return json_reply(400, {"error": "probabilities add up to more than 1 for " + ", ".join(over)})
        if seed is not None:
            STATE.fault_rng = random.Random(int(seed))
        STATE.faults = pending
        return json_reply(200, STATE.faults)


def ended_at(task, status):
    """Server epoch when the task reached its terminal status (from the clock model), or None."""
    if status == "CANCELED":
        return task["canceled"]
    if status in TERMINAL or status == "EXPIRED":
        return task["ended"]
    return None


def control_tasks(now):
    with STATE.lock:
        STATE.advance(now)
        out = []
        for tid in STATE.order:
            t = dict(STATE.tasks[tid])
            t["status"] = STATE.status(STATE.tasks[tid], now)
            t["phases"] = [list(p) for p in t["phases"]]
            t["ended_at"] = ended_at(t, t["status"])
            if t["status"] == "SUCCEEDED":
                t["result_sha256"] = hashlib.sha256(result_bytes(STATE.config["result_size"])).hexdigest()
            out.append(t)
        return json_reply(200, out)


def handle_control(method, path, body):
    action = path[len(CONTROL):].strip("/")
    if action == "reset" and method == "POST":
        STATE.reset()
        return json_reply(200, {"ok": True})
    if action == "config" and method in ("GET", "POST"):
        return control_config(method, body)
    if action == "faults" and method in ("GET", "POST"):
        return control_faults(method, body)
    if action == "log" and method == "GET":
        with STATE.lock:
            return json_reply(200, STATE.log)
    if action == "stats" and method == "GET":
        with STATE.lock:
            return json_reply(200, STATE.stats)
    if action == "tasks" and method == "GET":
        return control_tasks(time.time())
    if action == "uploads" and method == "GET":
        with STATE.lock:
            return json_reply(200, list(STATE.objects.values()))
    return json_reply(404, {"error": "no control endpoint %s %s" % (method, path)})


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------

class Request:
    """What an endpoint sees of one HTTP request."""

    def __init__(self, handler, method, path, query, body, now):
        self.method, self.path, self.body, self.now = method, path, body, now
        self.query = {k: v[0] for k, v in query.items()}
        self.headers = handler.headers
        self.hosts = handler.server.hosts     # listener -> "127.0.0.1:PORT", for URLs in answers
        self.api_key = ""
        self.reveals = []     # tasks whose terminal status this answer shows (STATE.reveal on send)
        try:
            self.json = json.loads(body.decode("utf-8"), parse_constant=lambda c: None) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name):
        return self.headers.get(name) or ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DashScopeTestServer/1.0"
    timeout = 300   # idle keep-alive connections are closed after this

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("dashscope_server: %s %s\n" % (self.address_string(), fmt % args))

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def dispatch(self, method):
        try:
            split = urlsplit(self.path)
            path = split.path.rstrip("/") or "/"
            body = self.read_body()
            now = time.time()
            host = self.server.role
            if host == "api" and (path == CONTROL or path.startswith(CONTROL + "/")):
                try:
                    parsed = json.loads(body.decode("utf-8")) if body.strip() else None
                except (ValueError, UnicodeDecodeError):
                    return self.send(json_reply(400, {"error": "body is not JSON"}), method)
                return self.send(handle_control(method, path, parsed), method)
            req = Request(self, method, path, parse_qs(split.query, keep_blank_values=True), body, now)
            kind, fn, args, needs_auth = route(host, method, path)
            entry = self.record(req, kind, host)
            generation = STATE.generation
            reply = None
            fault = STATE.take_fault(kind, self.path)
            if fault and fault["kind"] == "slow":
                time.sleep(fault["delay"])
                req.now = time.time()
                if STATE.generation != generation:  # reset meanwhile: a request of a test that is
                    reply = Reply(0, mode="drop")   # over creates nothing in the next one's state
            elif fault and fault["kind"] == "reset":  # a client that sent no Expect: as drop, with a RST
                self.reset()
                reply = Reply(0, mode="drop")
            elif fault and fault["kind"] == "hang":   # nothing processed, nothing answered
                reply = Reply(0, mode="hang")
                reply.delay = fault["delay"]
            elif fault and fault["kind"] not in ("lost", "oversized"):
                reply = fault_reply(fault, kind, args)
            if reply is None:
                reply = (needs_auth and check_auth(req)) or self.answer(req, fn, args)
            if fault and fault["kind"] == "lost":     # done (a submit's task exists), but no answer leaves
                reply = Reply(0, mode="drop")
            if fault and fault["kind"] == "oversized":    # done, and answered too big to read
                reply = oversized(reply, fault)
            with STATE.lock:
                api_call = host == "api" and (path == BASE or path.startswith(BASE + "/"))
                latency = STATE.config["latency"] if api_call else 0
            if latency > 0:
                time.sleep(latency)
            with STATE.lock:
                entry["answered"] = reply.status    # set before sending: the client may read the log at once
            if req.reveals and reply.mode == "normal":
                STATE.reveal(req.reveals, time.time())
            self.send(reply, method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            self.send(error_reply(500, "InternalError", "test server bug: see its stderr"), method)

    def answer(self, req, fn, args):
        api = self.server.role == "api"     # the OSS stand-ins answer in OSS's XML
        if fn is None:
            if api:
                return error_reply(404, "NotFound", "Not found: " + req.path)
            return oss_error(404, "NoSuchKey", "The specified key does not exist.")
        if fn is False:
            if api:
                return error_reply(405, "MethodNotAllowed", "Method %s not allowed on %s" % (req.method, req.path))
            return oss_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        return fn(req, *args)

    def record(self, req, kind, host):
        """Log the request (all its headers: tests check that no API key reaches the OSS hosts) and
        count it; returns the log entry."""
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        entry = {"host": host, "method": req.method, "path": self.path, "headers": headers,
                 "body": req.body.decode("utf-8", "replace"), "json": req.json, "time": req.now,
                 "answered": None}
        with STATE.lock:
            STATE.log.append(entry)
            STATE.stats["requests"] += 1
            STATE.stats["by_kind"][kind] += 1
            STATE.stats["by_host"][host] += 1
            name = rate_name(kind, req)
            if name:
                STATE.count_arrival(name, req.now)
            if getattr(self, "generation", None) != STATE.generation:   # first use since reset
                self.generation = STATE.generation
                STATE.stats["connections"] += 1
        return entry

    def send(self, reply, method):
        if reply.mode == "hang":
            self.hang(reply.delay)
        if reply.mode in ("drop", "hang"):
            self.close_connection = True
            return
        if reply.mode == "endless":
            return self.send_endless(reply, method)
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if reply.status != 204 and reply.status >= 200:
            self.send_header("Content-Length", str(len(reply.body)))
        body = b"" if method == "HEAD" or reply.status == 204 else reply.body
        if reply.mode == "truncated":
            body = body[:len(body) // 2]
            self.close_connection = True
        # Head and body in one write, as a real server's small answer comes: written apart (with
        # TCP_NODELAY) they arrive as two segments and the client wakes twice per answer.
        self._headers_buffer.append(b"\r\n")
        head, self._headers_buffer = b"".join(self._headers_buffer), []
        self.wfile.write(head + body)


    ENDLESS_LIMIT = 300     # seconds: a client that never hangs up still frees the thread

    def send_endless(self, reply, method):
        """A 200 whose body never ends (no Content-Length; the connection closes when the client
        goes): the result host of a hostile or broken storage service."""
        self.close_connection = True
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        if method == "HEAD":
            return
        chunk = result_bytes(65536)
        started = time.time()
        while time.time() - started < self.ENDLESS_LIMIT:
            if reply.rate is None:
                self.wfile.write(chunk)
            else:   # rate bytes per second, in tenths of a second
                self.wfile.write(chunk[:max(1, int(reply.rate / 10))])
                self.wfile.flush()
                time.sleep(0.1)

    def hang(self, limit):
        """Holds the connection open, answering nothing, until the client closes it or `limit`
        seconds pass (so the thread ends even if the client never gives up)."""
        end = time.monotonic() + limit
        sock = self.connection
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([sock], [], [], min(left, 0.2))
            if readable:
                try:
                    if not sock.recv(65536, socket.MSG_PEEK):
                        return          # the client closed it
                    sock.recv(65536)    # more bytes (a request sent anyway): read and ignore
                except OSError:
                    return

    def reset(self):
        """Closes the connection with a RST (SO_LINGER 0) once the handler lets go of it."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def handle_expect_100(self):
        """A `reset` fault hits a request that waits for 100 Continue before its body leaves: the
        connection is reset with the headers read and the body never sent (nothing processed)."""
        if self.server.role == "api" and not self.path.startswith(CONTROL):
            kind = route(self.server.role, self.command, urlsplit(self.path).path.rstrip("/") or "/")[0]
            with STATE.lock:
                fault = next((f for f in STATE.faults if f["kind"] == "reset" and "count" in f
                              and f["match"] in ("any", kind)), None)
            if fault:
                STATE.take_fault(kind)
                self.reset()
                return False
        return super().handle_expect_100()

    def handle_one_request(self):
        """One request; with config idle_close, a keep-alive connection left idle longer than that
        dies when the next request arrives: reset, unread and unanswered, as when a server closes
        an idle connection just as the client sends on it. Nothing is processed or logged."""
        idle_close = STATE.config["idle_close"]
        last = getattr(self, "last_answer", None)
        if idle_close > 0 and last is not None:
            readable, _, _ = select.select([self.connection], [], [], self.timeout)
            if readable and time.monotonic() - last > idle_close:
                with STATE.lock:
                    STATE.stats["idle_closed"] += 1
                self.reset()
                return
        super().handle_one_request()
        self.last_answer = time.monotonic()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    verbose = False

    def handle_error(self, request, client_address):
        # A client that resets or drops its connection (the faults tests make it do so) is not a
        # server error: stay quiet, as the Must-not of this file asks.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)
    role = "api"        # which of HOSTS this listener is
    hosts = {}          # every listener's "host:port", shared by the three (set by main)

    def server_bind(self):
        # HTTPServer.server_bind would call getfqdn(), which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port
        self.public_address = ("127.0.0.1" if host in ("0.0.0.0", "") else
                               "[%s]" % host if ":" in host else host, port)

    def get_request(self):
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with STATE.lock:
            STATE.stats["connections_accepted"] += 1
        return sock, addr


def write_port_file(path, port):
    """Atomically, so that a reader waiting for the file never sees it half written."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def stop_all(servers):
    """Shut every listener down, the API one last: main() returns when its loop ends, so the other
    two are stopped by then. shutdown() waits for a loop to end, so this runs off the loops' threads."""
    for host in reversed(HOSTS):
        servers[host].shutdown()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Local DashScope-compatible test server.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="API port (/api/v1, /__control); 0 picks a free port")
    ap.add_argument("--upload-port", type=int, default=0, help="OSS upload host's port; 0 picks a free port")
    ap.add_argument("--results-port", type=int, default=0, help="result-file host's port; 0 picks a free port")
    ap.add_argument("--port-file", help="write the API port here, the others to FILE.upload and "
                    "FILE.results (each atomically, FILE last)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    if ":" in args.host:
        Server.address_family = socket.AF_INET6
    servers = {}
    for host, port in zip(HOSTS, (args.port, args.upload_port, args.results_port)):
        servers[host] = Server((args.host, port), Handler)
        servers[host].role, servers[host].verbose = host, args.verbose
    hosts = {host: "%s:%d" % server.public_address for host, server in servers.items()}
    for server in servers.values():
        server.hosts = hosts
    for host in HOSTS[1:]:
        threading.Thread(target=servers[host].serve_forever, kwargs={"poll_interval": 0.2},
                         name="serve-" + host, daemon=True).start()

    def stop(signum, frame):
        threading.Thread(target=stop_all, args=(servers,), daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:   # `sh ... &` starts us with SIGINT ignored
        signal.signal(signal.SIGINT, stop)

    if args.port_file:
        # The API port's file last: a launcher waits for it, then finds the other two already there.
        for host in HOSTS[1:]:
            write_port_file(args.port_file + "." + host, servers[host].server_address[1])
        write_port_file(args.port_file, servers["api"].server_address[1])
    if args.verbose:
        sys.stderr.write("dashscope_server: listening on %s\n" % ", ".join(
            "%s http://%s" % (host, hosts[host]) for host in HOSTS))
    try:
        servers["api"].serve_forever(poll_interval=0.2)
    finally:
        for server in servers.values():
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
