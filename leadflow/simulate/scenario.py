"""A seeded scenario of a car-dealer group's touchpoints, with the ground truth to grade against.

Pure: no I/O, no clock reads (`now` is passed in); the same seed and `now` give byte-identical events.
Produces `count` valid `TouchpointReceived` events in emission order: true persons' journeys over
WeChat, Douyin, web, call centre, stores and e-commerce (interleaved across persons, each person's in
time order, all within the 30 days before `now`), about 10% junk, and a `GroundTruth` of who is who.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import accumulate
from typing import Any, NamedTuple

from schemas.touchpoints import EventType as E
from schemas.touchpoints import Identifier, Source, TouchpointReceived
from schemas.touchpoints import IdentifierType as T

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China: a fixed offset is exact
WINDOW_S = 30 * 86_400 - 3_600  # an hour of margin keeps whole-second times inside the 30 days
JUNK_RATE = 0.10
OA_APP, MP_APP = "wx_oa_1", "wx_mp_1"  # one official account, one mini-program: two openid namespaces
CONVERSIONS = (E.ORDER_PLACED, E.PURCHASE_COMPLETED)

SYSTEMS = {"wechat_oa": "wechat_oa", "wechat_mp": "mini_program", "douyin": "douyin_leads",
           "call_center": "call_center", "store": "dms", "web": "website", "ecommerce": "tmall"}
CAMPAIGNS = {"douyin": ("dy-spring-drive", "dy-live-0412", "dy-suv-retarget"),
             "web": ("sem-baidu-brand", "sem-baidu-suv", "autohome-leads"),
             "wechat_mp": ("gdt-moments-01", "gdt-moments-02")}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ("伟", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "涛", "明", "超", "秀英", "丽",
         "强", "婷", "鹏", "浩然", "子涵", "欣怡", "宇轩")
CITIES = ("上海", "杭州", "苏州", "南京", "无锡", "宁波", "嘉兴", "合肥")
PRICES = {"Model Y": 263_900, "Model 3": 231_900, "汉EV": 209_800, "唐DM-i": 179_800,
          "理想L7": 301_800, "理想L6": 249_800, "问界M7": 249_800, "问界M9": 469_800,
          "小米SU7": 215_900, "小鹏G6": 176_800, "极氪001": 269_000, "宝马3系": 299_900}
MODELS = tuple(PRICES)
BUDGETS = ("20-30万", "25w左右", "30万以内", "15-20万", "40万以上", "预算30w", "35万左右", "不超过25万")
PREFIXES = ("130", "132", "135", "136", "137", "138", "139", "150", "152", "158", "159", "166",
            "177", "180", "182", "186", "187", "188", "189", "199")
TEST_NUMBERS = ("13800138000", "00000000000", "11111111111", "12345678901")
INVALID_PHONES = ("1380013800", "138001380001", "23800001111", "1380000abcd", "10086", "021-5555")
JUNK_REASONS = ("test_number", "invalid_phone", "bot_form", "disposable_email", "brushing")
DISPOSABLE = ("mailinator.com", "10minutemail.com", "guerrillamail.com", "yopmail.com")
MAIL_DOMAINS = ("qq.com", "163.com", "126.com", "foxmail.com", "gmail.com")
UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1.230804.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/5G Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/104.0.5112.97 Mobile Safari/537.36 aweme_290100 "
    "JsSdk/1.0 NetType/4G app_version/29.1.0",
    "Mozilla/5.0 (Linux; Android 12; NOH-AN00 Build/HUAWEINOH-AN00; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/99.0.4844.88 Mobile Safari/537.36 HuaweiBrowser/14.0.5.302",
)
BOT_UAS = ("python-requests/2.31", "curl/8.4.0", "okhttp/4.9.3", None)  # None: no UA sent at all
IP_PREFIXES = ("114.86", "183.14", "36.112", "223.104", "117.136", "101.88", "58.247")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # VINs never use I, O or Q


# ---- what comes out -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedEvent:
    """One emitted touchpoint and who really produced it."""

    event: TouchpointReceived
    actor_id: str  # a true person ("p-00001") or a junk actor ("junk-0001")
    junk_reason: str | None = None

    @property
    def junk(self) -> bool:
        return self.junk_reason is not None


@dataclass(frozen=True)
class PersonTruth:
    person_id: str
    kind: str  # cold | warm | buyer | owner (an existing customer: VIN known, comes for service)
    converted: bool  # an order or a purchase was emitted for this person
    identifiers: tuple[Identifier, ...]  # every raw identifier the person's events carried


@dataclass(frozen=True)
class GroundTruth:
    """Who is who: every event's actor and junk flag; every person's kind, conversion, identifiers."""

    tenant: str
    seed: int
    now: datetime
    events: dict[str, SimulatedEvent]  # event_id → event, in emission order
    persons: dict[str, PersonTruth]
    junk_actors: dict[str, tuple[str, tuple[Identifier, ...]]]  # actor id → (reason, identifiers)

    def to_dict(self) -> dict[str, Any]:
        def ids(identifiers: tuple[Identifier, ...]) -> list[dict[str, Any]]:
            return [i.model_dump(mode="json") for i in identifiers]

        junk = sum(e.junk for e in self.events.values())
        return {
            "tenant": self.tenant, "seed": self.seed, "now": self.now.isoformat(),
            "summary": {"events": len(self.events), "junk_events": junk, "persons": len(self.persons),
                        "converted": sum(p.converted for p in self.persons.values()),
                        "junk_actors": len(self.junk_actors)},
            "events": {k: {"person_id": e.actor_id, "junk": e.junk, "junk_reason": e.junk_reason}
                       for k, e in self.events.items()},
            "persons": {k: {"kind": p.kind, "converted": p.converted, "identifiers": ids(p.identifiers)}
                        for k, p in self.persons.items()},
            "junk_actors": {k: {"reason": reason, "identifiers": ids(i)}
                            for k, (reason, i) in self.junk_actors.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)


# ---- people ---------------------------------------------------------------------------------------


def _token(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _id(type_: T, value: str, namespace: str | None = None) -> Identifier:
    return Identifier(type=type_, value=value, namespace=namespace)


def _spell(rng: random.Random, phone: str) -> str:
    """The phone as call-centre agents and store staff really type it; the stitcher must normalise."""
    a, b, c = phone[:3], phone[3:7], phone[7:]
    return rng.choice((phone, phone, f"+86 {a} {b} {c}", f"0086-{a}-{b}-{c}", f"86 {phone}",
                       phone.translate(FULLWIDTH), f"{a}-{b}-{c}"))


def _ip(rng: random.Random) -> str:
    return f"{rng.choice(IP_PREFIXES)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _device(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Phones:
    """Hands out unique, valid-looking mobile numbers (never a known test number)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set(TEST_NUMBERS)

    def new(self) -> str:
        while (phone := self.rng.choice(PREFIXES) + f"{self.rng.randrange(10**8):08d}") in self.used:
            pass
        self.used.add(phone)
        return phone


class _Person:
    """A true person: the identifiers they own (not all get used) and what they are after."""

    def __init__(self, pid: str, kind: str, rng: random.Random, phones: _Phones, stores: int) -> None:
        r = self.rng = rng
        self.pid, self.kind, self.model = pid, kind, r.choice(MODELS)
        self.lead = {"name": r.choice(SURNAMES) + r.choice(GIVEN), "city": r.choice(CITIES),
                     "car_model": self.model, "budget": r.choice(BUDGETS)}
        self.phone, self.store = phones.new(), f"store-{r.randint(1, stores):02d}"
        self.unionid, self.oa_openid, self.mp_openid = (f"o{_token(r, 27)}" for _ in range(3))
        self.douyin_id, self.device_id = f"dy_{_token(r, 16)}", _device(r)
        self.email = f"{_token(r, 6, ALNUM[26:52])}{r.randint(10, 99)}@{r.choice(MAIL_DOMAINS)}"
        self.crm_id, self.vin = f"CRM{r.randrange(10**7, 10**8)}", "L" + _token(r, 16, VIN_CHARS)
        self.web = {"ip": _ip(r), "user_agent": r.choice(UAS)}

    def oa(self) -> list[Identifier]:
        return [_id(T.WECHAT_OPENID, self.oa_openid, OA_APP), _id(T.WECHAT_UNIONID, self.unionid)]

    def mp(self) -> list[Identifier]:
        return [_id(T.WECHAT_OPENID, self.mp_openid, MP_APP), _id(T.WECHAT_UNIONID, self.unionid)]

    def phone_id(self, spelled: bool = False) -> Identifier:
        return _id(T.PHONE, _spell(self.rng, self.phone) if spelled else self.phone)

    def form(self, form_id: str) -> dict[str, Any]:
        # Humans take a while to type a name and a phone; bots don't.
        return {**self.lead, "form_id": form_id, "fill_seconds": round(self.rng.uniform(12, 180), 1)}


# ---- journeys -------------------------------------------------------------------------------------


class _Step(NamedTuple):
    gap_s: int  # seconds after the actor's previous step
    type: E
    channel: str
    ids: list[Identifier]
    attrs: dict[str, Any]
    src: dict[str, Any]  # extra Source fields (system override, campaign_id, store_id, ip, user_agent)


GAPS = {"min": (20, 900), "hours": (1_800, 43_200), "days": (43_200, 5 * 86_400)}


class _Journey:
    def __init__(self, rng: random.Random) -> None:
        self.rng, self.steps = rng, []

    def add(self, type_: E, channel: str, ids: list[Identifier], attrs: dict[str, Any] | None = None,
            *, gap: str = "days", **src: Any) -> None:
        if channel in CAMPAIGNS and "campaign_id" not in src and self.rng.random() < 0.7:
            src["campaign_id"] = self.rng.choice(CAMPAIGNS[channel])  # paid traffic carries its campaign
        src = {k: v for k, v in src.items() if v is not None}
        self.steps.append(_Step(self.rng.randint(*GAPS[gap]), type_, channel, ids, attrs or {}, src))


def _call(rng: random.Random, direction: str) -> dict[str, Any]:
    connected = rng.random() < 0.75
    return {"direction": direction, "connected": connected,
            "duration_s": float(rng.randint(30, 600) if connected else rng.randint(0, 25))}


def _entry(j: _Journey, p: _Person, reveal: bool, owners: list[_Person]) -> str:
    """How the person first shows up; if `reveal`, it ends with the person leaving a phone number."""
    r = j.rng
    route = r.choices(("wechat", "douyin", "web", "call", "referral"), (35, 30, 20, 10, 5))[0]
    if route == "referral" and reveal and owners:
        referrer = r.choice(owners)
        attrs = {**p.lead, "referrer_phone": _spell(r, referrer.phone)}
        j.add(E.REFERRAL_MADE, "store", [p.phone_id()], attrs, store_id=referrer.store)
    elif route in ("call", "referral") and reveal:
        j.add(E.CALL_LOGGED, "call_center", [p.phone_id(spelled=True)], {**p.lead, **_call(r, "inbound")})
    elif route == "wechat":
        j.add(E.WECHAT_FOLLOWED, "wechat_oa", p.oa())
        for _ in range(r.randint(0, 2)):
            attrs = {"action": r.choice(("watch", "like", "share")), "content_id": f"art-{r.randint(1, 999)}"}
            j.add(E.CONTENT_ENGAGED, "wechat_oa", p.oa()[:1], attrs, gap="hours")  # openid only
        if reveal:  # the follower books through the mini-program: another app, so another openid
            j.add(E.FORM_SUBMITTED, "wechat_mp", [*p.mp(), p.phone_id()], p.form("mp-testdrive"), **p.web)
    elif route == "douyin":
        for _ in range(r.randint(1, 3)):
            j.add(E.CONTENT_ENGAGED, "douyin", [_id(T.DOUYIN_ID, p.douyin_id)],
                  {"action": r.choice(("watch", "like", "comment", "favorite")), "car_model": p.model,
                   "content_id": f"{r.choice(('video', 'live'))}-{r.randint(10**5, 10**6)}"}, gap="hours")
        if reveal:
            j.add(E.FORM_SUBMITTED, "douyin", [_id(T.DOUYIN_ID, p.douyin_id), p.phone_id()],
                  p.form("dy-leadform"), gap="min", **p.web)
    else:
        route = "web"
        for _ in range(r.randint(1, 3)):
            j.add(E.PAGE_VIEWED, "web", [_id(T.DEVICE_ID, p.device_id)],
                  {"url": f"https://www.example-auto.cn/models/{r.randint(1, 12)}"}, gap="min", **p.web)
        if reveal:
            ids = [_id(T.DEVICE_ID, p.device_id), p.phone_id()]
            j.add(E.FORM_SUBMITTED, "web", ids + [_id(T.EMAIL, p.email)] * (r.random() < 0.3),
                  p.form("web-quote"), gap="min", **p.web)
    return route


def _journey(rng: random.Random, p: _Person, owners: list[_Person]) -> list[_Step]:
    j, r, buyer = _Journey(rng), rng, p.kind == "buyer"
    car = {"car_model": p.model}
    store_ids = [p.phone_id(spelled=True), _id(T.CRM_ID, p.crm_id)]  # the DMS keeps one spelling
    if p.kind == "owner":  # an existing customer: service visits by VIN, a follow-up call, maybe more
        for _ in range(1 + (r.random() < 0.25)):
            attrs = {**car, "service_type": r.choice(("保养", "维修", "钣喷")),
                     "mileage_km": r.randint(3_000, 90_000)}
            j.add(E.SERVICE_VISITED, "store", [*store_ids, _id(T.VIN, p.vin)], attrs, store_id=p.store)
            if r.random() < 0.5:
                j.add(E.CALL_LOGGED, "call_center", [p.phone_id(spelled=True)], _call(r, "outbound"))
        if r.random() < 0.3:
            j.add(E.WECHAT_FOLLOWED, "wechat_oa", p.oa())
        if r.random() < 0.05:
            j.add(E.COMPLAINT_FILED, "call_center", [p.phone_id(spelled=True)], {"topic": "维修质量"})
        return j.steps
    route = _entry(j, p, p.kind != "cold", owners)
    if p.kind == "cold":
        if route == "wechat" and r.random() < 0.15:
            j.add(E.WECHAT_UNFOLLOWED, "wechat_oa", p.oa())
        return j.steps
    # Converting persons show the high-intent steps far more often: the signal scoring should find.
    j.add(E.CALL_LOGGED, "call_center", [p.phone_id(spelled=True)], _call(r, "outbound"), gap="hours")
    if r.random() < (0.9 if buyer else 0.4):
        if route == "wechat":
            j.add(E.PRICE_INQUIRED, "wechat_mp", p.mp(), {**p.lead}, **p.web)
        else:
            j.add(E.PRICE_INQUIRED, "call_center", [p.phone_id(spelled=True)], {**p.lead})
    if r.random() < (0.5 if buyer else 0.1):
        j.add(E.WECOM_CONTACT_ADDED, "store", [_id(T.WECHAT_UNIONID, p.unionid), p.phone_id()], {},
              system="wecom", store_id=p.store)
    if r.random() < (0.85 if buyer else 0.12):
        j.add(E.TEST_DRIVE_BOOKED, "store", [p.phone_id()], {**car}, store_id=p.store)
    if r.random() < (0.9 if buyer else 0.1):
        j.add(E.STORE_VISITED, "store", store_ids, {**car, "duration_s": float(r.randint(900, 7200))},
              store_id=p.store)
    if r.random() < (0.8 if buyer else 0.06):
        j.add(E.QUOTE_REQUESTED, "store", store_ids, {**car, "quoted_price": PRICES[p.model]},
              store_id=p.store, gap="hours")
    if buyer:
        money = {**car, "currency": "CNY", "order_id": f"SO{r.randrange(10**9, 10**10)}"}
        price = {**money, "amount": float(PRICES[p.model])}
        if r.random() < 0.6:  # a deposit through the group's Tmall store, under a Tmall member id
            member = _id(T.MEMBER_ID, f"tb{r.randrange(10**9, 10**10)}", "tmall")
            j.add(E.DEPOSIT_PAID, "ecommerce", [p.phone_id(), member], {**money, "amount": 5000.0})
        j.add(E.ORDER_PLACED, "store", store_ids, price, store_id=p.store)
        if r.random() < 0.7:  # the rest are still waiting for delivery
            j.add(E.PURCHASE_COMPLETED, "store", [*store_ids, _id(T.VIN, p.vin)], price, store_id=p.store)
    elif r.random() < 0.06:
        j.add(E.UNSUBSCRIBED, "call_center", [p.phone_id(spelled=True)], {"reason": "不需要了"})
    elif r.random() < 0.03:
        j.add(E.COMPLAINT_FILED, "call_center", [p.phone_id(spelled=True)], {"topic": "骚扰电话"})
    return j.steps


# ---- junk -----------------------------------------------------------------------------------------


def _junk(rng: random.Random, phones: _Phones, room: int) -> tuple[str, list[_Step]]:
    """One junk actor: its reason and its form fills (`room` caps how many)."""
    r, j = rng, _Journey(rng)
    # Brushing weighs less per draw because each burst brings several forms.
    reason = r.choices(JUNK_REASONS, (3, 3, 3, 3, 1 if room >= 3 else 0))[0]
    channel = r.choice(("web", "douyin", "wechat_mp"))
    device = {"web": _id(T.DEVICE_ID, _device(r)), "douyin": _id(T.DOUYIN_ID, f"dy_{_token(r, 16)}"),
              "wechat_mp": _id(T.WECHAT_OPENID, f"o{_token(r, 27)}", MP_APP)}[channel]
    src = {"ip": _ip(r), "user_agent": r.choice(BOT_UAS) if reason == "bot_form" else r.choice(UAS)}
    n = r.randint(5, 10) if reason == "brushing" else 1  # brushing: one device and IP, many forms
    for _ in range(min(n, room)):
        # Brushers vary the name with every form; testers type whatever comes to hand.
        name = r.choice(SURNAMES) + r.choice(GIVEN) if reason == "brushing" else r.choice(("测试", "test", "a"))
        fill = r.uniform(0.2, 1.9) if reason == "bot_form" else r.uniform(8, 90)
        attrs = {"name": name, "car_model": r.choice(MODELS), "form_id": f"{channel}-leadform",
                 "fill_seconds": round(fill, 1)}
        if reason == "disposable_email":
            contact = _id(T.EMAIL, f"{_token(r, 8, ALNUM[26:])}@{r.choice(DISPOSABLE)}")
        elif reason in ("test_number", "invalid_phone"):
            contact = _id(T.PHONE, r.choice(TEST_NUMBERS if reason == "test_number" else INVALID_PHONES))
        else:
            contact = _id(T.PHONE, phones.new())
        j.add(E.FORM_SUBMITTED, channel, [device, contact], attrs, gap="min", **src)
    return reason, j.steps


# ---- the stream -----------------------------------------------------------------------------------


def _times(rng: random.Random, steps: list[_Step], now: datetime) -> list[datetime]:
    """Place an actor's steps inside the window, keeping their order and (scaled if too long) gaps."""
    offsets = list(accumulate([0] + [s.gap_s for s in steps[1:]]))
    span = offsets[-1]
    if span > WINDOW_S:
        offsets, span = [o * WINDOW_S // span for o in offsets], WINDOW_S
    start = rng.randint(0, WINDOW_S - span)
    return [now - timedelta(seconds=WINDOW_S - start - o) for o in offsets]


def generate(tenant: str, seed: int, count: int, now: datetime, stores: int = 5,
             junk_rate: float = JUNK_RATE) -> tuple[list[SimulatedEvent], GroundTruth]:
    """`count` touchpoints of `tenant` in emission order, and the truth about them."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if count < 0 or stores < 1 or not 0 <= junk_rate < 1:
        raise ValueError("count >= 0, stores >= 1 and 0 <= junk_rate < 1 are required")
    rng, now = random.Random(seed), now.astimezone(SHANGHAI).replace(microsecond=0)
    phones = _Phones(rng)
    junk_budget = round(count * junk_rate)
    actors: list[tuple[str, str | None, list[_Step]]] = []  # (actor id, junk reason, steps)
    kinds: dict[str, str] = {}
    owners: list[_Person] = []
    n = 0
    while n < count - junk_budget:
        kind = rng.choices(("cold", "warm", "buyer", "owner"), (46, 35, 11, 8))[0]
        p = _Person(f"p-{len(kinds) + 1:05d}", kind, rng, phones, stores)
        steps = _journey(rng, p, owners)[: count - junk_budget - n]
        actors.append((p.pid, None, steps))
        kinds[p.pid], n = kind, n + len(steps)
        owners += [p] * (kind == "owner")
    while n < count:
        reason, steps = _junk(rng, phones, count - n)
        actors.append((f"junk-{len(actors) - len(kinds) + 1:04d}", reason, steps))
        n += len(steps)
    # Interleave by time; the creation index breaks ties, so each actor keeps its own order.
    placed = sorted(((t, i, k), actor, reason, step)
                    for i, (actor, reason, steps) in enumerate(actors)
                    for k, (t, step) in enumerate(zip(_times(rng, steps, now), steps, strict=True)))
    events: dict[str, SimulatedEvent] = {}
    for k, ((t, _, _), actor, reason, s) in enumerate(placed):
        event_id = f"sim-{seed}-{k:08d}"
        source = Source(**{"system": SYSTEMS[s.channel], "channel": s.channel, **s.src})
        event = TouchpointReceived(event_id=event_id, event_type=s.type, occurred_at=t, tenant_id=tenant,
                                   source=source, identifiers=s.ids, attributes=s.attrs)
        events[event_id] = SimulatedEvent(event, actor, reason)
    return list(events.values()), _truth(tenant, seed, now, events, kinds)


def _truth(tenant: str, seed: int, now: datetime, events: dict[str, SimulatedEvent],
           kinds: dict[str, str]) -> GroundTruth:
    seen: dict[str, dict[tuple[str, str, str | None], Identifier]] = {}
    converted: dict[str, bool] = {pid: False for pid in kinds}
    reasons: dict[str, str] = {}
    for e in events.values():
        ids = seen.setdefault(e.actor_id, {})
        for i in e.event.identifiers:
            ids.setdefault((i.type, i.value, i.namespace), i)
        if e.junk_reason:
            reasons[e.actor_id] = e.junk_reason
        elif e.event.event_type in CONVERSIONS:
            converted[e.actor_id] = True
    persons = {pid: PersonTruth(pid, kind, converted[pid], tuple(seen[pid].values()))
               for pid, kind in kinds.items()}  # every journey has at least one step
    junk = {a: (reason, tuple(seen[a].values())) for a, reason in sorted(reasons.items())}
    return GroundTruth(tenant, seed, now, events, persons, junk)
