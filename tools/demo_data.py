"""A realistic, deterministic demo data set in the CSV import format of SPEC §3.

Operators rehearse dry runs, reviewers read audits and benchmarks time the resolver on data that
looks like production — Japanese companies, people and addresses, both channels, dirty e-mail
addresses — without one real person or domain in it: every address is under example.jp,
example.co.jp, example.com or mail.example.ne.jp. Every edge case of SPEC §4 (`EdgeCase`) is
planted several times on otherwise clean accounts, so that each reason and warning code shows up
in isolation in a demo audit; background noise at realistic rates comes on top.

Rows are streamed: one customer's rows are drafted and written before the next is drafted, so a
million customers need no more memory than three thousand. The output depends only on the seed
(one `random.Random`), byte for byte.

Usage: `python -m tools.demo_data OUT_DIR [--customers N] [--seed S]`.
"""

from __future__ import annotations

import csv
import random
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from itertools import accumulate
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from jobs.source.models import source_tables
from resolver.model import (
    AccountType,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    MyPageRole,
    PartnerKind,
    PartnerStatus,
    Plan,
    Product,
    ProductStatus,
    SuppressionReason,
    UserStatus,
)
from resolver.normalize import dedupe_key
from resolver.warnings import ADMIN_CUTOFF

__all__ = [
    "ADMIN_CUTOFF",
    "CUSTOMER_EDGE_CASES",
    "DEFAULT_CUSTOMERS",
    "DEFAULT_SEED",
    "DEMO_AS_OF",
    "DEMO_DOMAINS",
    "FILES",
    "HEADERS",
    "PARTNER_EDGE_CASES",
    "DemoSummary",
    "EdgeCase",
    "generate",
    "main",
]

_T = TypeVar("_T")

DEFAULT_CUSTOMERS: Final = 3000
DEFAULT_SEED: Final = 20261201
DEMO_AS_OF: Final = date(2026, 12, 1)  # the as-of date the planted dates are relative to

# The only domains that ever appear: reserved example domains, never a real one.
DEMO_DOMAINS: Final = ("example.co.jp", "example.jp", "example.com", "mail.example.ne.jp")

# §3: the files and their columns, in order — the source tables mirror the CSV format, and
# the importer reads its rules from them, so the generator takes its headers there too.
HEADERS: Final[Mapping[str, tuple[str, ...]]] = {
    f"{table.name}.csv": tuple(column.name for column in table.columns) for table in source_tables()
}
FILES: Final = tuple(HEADERS)


class EdgeCase(StrEnum):
    """The SPEC §4 situations the demo plants on purpose; the comment names what each exercises."""

    # --- customers (planted on otherwise clean, direct, active accounts unless said) ---------
    RESELLER_WITH_SYSADMIN = "reseller_with_sysadmin"  # RESELLER_CHANNEL despite admins
    TERMINATED_CUSTOMER = "terminated_customer"  # CONTRACT_ENDED
    SUSPENDED_CUSTOMER = "suspended_customer"  # §4: suspended still receives
    GROUP_ACCOUNT_SYSADMIN = "group_account_sysadmin"  # GROUP_ACCOUNT despite the flag
    LOCKED_SYSADMIN = "locked_sysadmin"  # USER_NOT_ACTIVE
    DELETED_SYSADMIN = "deleted_sysadmin"  # USER_NOT_ACTIVE
    ADMIN_FLAG_0 = "admin_flag_0"  # LEGACY_ADMIN whatever its flag
    ADMIN_FLAG_1 = "admin_flag_1"  # LEGACY_ADMIN, one candidate only
    ADMIN_OTHER_CASE = "admin_other_case"  # `Admin` / `ADMIN`: case-insensitive
    ADMIN_AFTER_CUTOFF = "admin_after_cutoff"  # warning ADMIN_AFTER_CUTOFF (first on the day)
    ADMIN_OEM = "admin_oem"  # OEM after the cutoff: no warning
    ADMIN_BEFORE_CUTOFF = "admin_before_cutoff"  # no warning (first on the day before)
    EMAIL_EMPTY = "email_empty"  # MISSING_EMAIL
    EMAIL_SPACES_ONLY = "email_spaces_only"  # MISSING_EMAIL after trimming
    EMAIL_NO_AT = "email_no_at"  # INVALID_EMAIL
    EMAIL_DOUBLE_AT = "email_double_at"  # INVALID_EMAIL
    EMAIL_TRAILING_DOT = "email_trailing_dot"  # INVALID_EMAIL
    EMAIL_FULL_WIDTH = "email_full_width"  # warning EMAIL_NORMALIZED, then included
    EMAIL_UPPER_CASE_DOMAIN = "email_upper_case_domain"  # domain lower-cased
    EMAIL_SURROUNDING_SPACES = "email_surrounding_spaces"  # trimmed
    SUPPRESSED_HARD_BOUNCE = "suppressed_hard_bounce"  # SUPPRESSED
    SUPPRESSED_COMPLAINT = "suppressed_complaint"  # SUPPRESSED
    SUPPRESSED_MANUAL = "suppressed_manual"  # SUPPRESSED
    SUPPRESSED_OTHER_CASE = "suppressed_other_case"  # SUPPRESSED: the key is case-insensitive
    DUPLICATE_IN_CUSTOMER = "duplicate_in_customer"  # DUPLICATE_ADDRESS: manager = billing
    DUPLICATE_ACROSS_CUSTOMERS = "duplicate_across_customers"  # one 会計事務所 for many
    DUPLICATE_CUSTOMER_PARTNER = "duplicate_customer_partner"  # a partner's address as billing
    UNREACHABLE = "unreachable"  # warning UNREACHABLE_CUSTOMER: no contacts, no admins
    NAME_CONTROL_CHARACTERS = "name_control_characters"  # warning HEADER_SANITIZED
    COMPANY_NOT_ISO_2022_JP = "company_not_iso_2022_jp"  # 髙, 𠮷, ①: charset iso-2022-jp
    COMPANY_HTML_SPECIAL = "company_html_special"  # <, &, ": auto-escaping in HTML bodies
    COMPANY_LONG_NAME = "company_long_name"  # header folding, layout
    # --- partners -------------------------------------------------------------------------
    PARTNER_TERMINATED = "partner_terminated"  # PARTNER_NOT_ACTIVE
    CONTACT_INACTIVE = "contact_inactive"  # CONTACT_NOT_ACTIVE
    CERTIFICATION_EXPIRED = "certification_expired"  # before the as-of date
    CERTIFICATION_EMPTY = "certification_empty"  # CERTIFICATION_EXPIRED: empty
    CERTIFICATION_ON_AS_OF = "certification_on_as_of"  # §4: the day itself is valid
    CERTIFICATION_FUTURE = "certification_future"  # CERTIFIED_IMPLEMENTER
    CONTACT_WITH_CERTIFIED_UNTIL = "contact_with_certified_until"  # §4: means nothing for contact


PARTNER_EDGE_CASES: Final = (
    EdgeCase.PARTNER_TERMINATED,
    EdgeCase.CONTACT_INACTIVE,
    EdgeCase.CERTIFICATION_EXPIRED,
    EdgeCase.CERTIFICATION_EMPTY,
    EdgeCase.CERTIFICATION_ON_AS_OF,
    EdgeCase.CERTIFICATION_FUTURE,
    EdgeCase.CONTACT_WITH_CERTIFIED_UNTIL,
)
CUSTOMER_EDGE_CASES: Final = tuple(e for e in EdgeCase if e not in PARTNER_EDGE_CASES)

_MIN_PLANTED: Final = 3  # "several times" even in a small demo
_CUSTOMERS_PER_PLANT: Final = 1000  # beyond 3,000 customers, one more of each per thousand
_CUSTOMERS_PER_PARTNER: Final = 75
_MIN_PARTNERS: Final = 40

# --- vocabulary ---------------------------------------------------------------------------------

# (kanji, romaji): the most common Japanese surnames.
_SURNAMES: Final = (
    ("佐藤", "sato"),
    ("鈴木", "suzuki"),
    ("高橋", "takahashi"),
    ("田中", "tanaka"),
    ("伊藤", "ito"),
    ("渡辺", "watanabe"),
    ("山本", "yamamoto"),
    ("中村", "nakamura"),
    ("小林", "kobayashi"),
    ("加藤", "kato"),
    ("吉田", "yoshida"),
    ("山田", "yamada"),
    ("佐々木", "sasaki"),
    ("山口", "yamaguchi"),
    ("松本", "matsumoto"),
    ("井上", "inoue"),
    ("木村", "kimura"),
    ("林", "hayashi"),
    ("斎藤", "saito"),
    ("清水", "shimizu"),
    ("山崎", "yamazaki"),
    ("森", "mori"),
    ("池田", "ikeda"),
    ("橋本", "hashimoto"),
    ("阿部", "abe"),
    ("石川", "ishikawa"),
    ("前田", "maeda"),
    ("藤田", "fujita"),
    ("小川", "ogawa"),
    ("岡田", "okada"),
    ("後藤", "goto"),
    ("長谷川", "hasegawa"),
    ("村上", "murakami"),
    ("近藤", "kondo"),
    ("石井", "ishii"),
    ("坂本", "sakamoto"),
    ("遠藤", "endo"),
    ("青木", "aoki"),
    ("藤井", "fujii"),
    ("西村", "nishimura"),
    ("福田", "fukuda"),
    ("太田", "ota"),
    ("三浦", "miura"),
    ("藤原", "fujiwara"),
    ("岡本", "okamoto"),
    ("松田", "matsuda"),
    ("中川", "nakagawa"),
    ("中野", "nakano"),
    ("原田", "harada"),
    ("小野", "ono"),
)
# Variant kanji that real registers hold and ISO-2022-JP cannot encode (a To: name problem).
_RARE_SURNAMES: Final = (("髙橋", "takahashi"), ("山﨑", "yamazaki"), ("𠮷田", "yoshida"))
_RARE_SURNAME_RATE: Final = 0.004

_GIVEN_NAMES: Final = (
    ("太郎", "taro"),
    ("一郎", "ichiro"),
    ("健太", "kenta"),
    ("翔太", "shota"),
    ("大輔", "daisuke"),
    ("誠", "makoto"),
    ("直樹", "naoki"),
    ("拓也", "takuya"),
    ("健一", "kenichi"),
    ("浩", "hiroshi"),
    ("隆", "takashi"),
    ("亮", "ryo"),
    ("蓮", "ren"),
    ("大翔", "hiroto"),
    ("悠真", "yuma"),
    ("修", "osamu"),
    ("学", "manabu"),
    ("和也", "kazuya"),
    ("達也", "tatsuya"),
    ("雄一", "yuichi"),
    ("花子", "hanako"),
    ("陽子", "yoko"),
    ("恵", "megumi"),
    ("由美", "yumi"),
    ("美咲", "misaki"),
    ("愛", "ai"),
    ("彩", "aya"),
    ("真由美", "mayumi"),
    ("裕子", "yuko"),
    ("京子", "kyoko"),
    ("さくら", "sakura"),
    ("結衣", "yui"),
    ("智子", "tomoko"),
    ("明美", "akemi"),
    ("直子", "naoko"),
    ("千尋", "chihiro"),
    ("美穂", "miho"),
    ("香織", "kaori"),
    ("舞", "mai"),
    ("陽菜", "hina"),
)

_STEMS: Final = (
    ("さくら", "sakura"),
    ("東西", "tozai"),
    ("日の出", "hinode"),
    ("みらい", "mirai"),
    ("丸の内", "marunouchi"),
    ("青空", "aozora"),
    ("大和", "yamato"),
    ("北斗", "hokuto"),
    ("富士", "fuji"),
    ("光", "hikari"),
    ("中央", "chuo"),
    ("協和", "kyowa"),
    ("平和", "heiwa"),
    ("三和", "sanwa"),
    ("日本橋", "nihonbashi"),
    ("常盤", "tokiwa"),
    ("朝日", "asahi"),
    ("昭和", "showa"),
    ("明星", "myojo"),
    ("若葉", "wakaba"),
    ("瑞穂", "mizuho"),
    ("東海", "tokai"),
    ("北陸", "hokuriku"),
    ("湘南", "shonan"),
    ("信州", "shinshu"),
    ("浪速", "naniwa"),
    ("千代田", "chiyoda"),
    ("山手", "yamate"),
    ("白山", "hakusan"),
    ("栄", "sakae"),
    ("博多", "hakata"),
    ("みどり", "midori"),
    ("ひまわり", "himawari"),
    ("つばさ", "tsubasa"),
    ("あおい", "aoi"),
    ("やまびこ", "yamabiko"),
    ("サンライズ", "sunrise"),
    ("ハーモニー", "harmony"),
    ("ユニオン", "union"),
    ("オリオン", "orion"),
    ("テクノ", "techno"),
    ("アルファ", "alpha"),
    ("グローバル", "global"),
    ("エコー", "echo"),
    ("セントラル", "central"),
)
_SUFFIXES: Final = (
    "商事",
    "製作所",
    "工業",
    "建設",
    "運輸",
    "食品",
    "電機",
    "設計",
    "印刷",
    "不動産",
    "物産",
    "企画",
    "システム",
    "商店",
    "精工",
    "興業",
    "産業",
    "工務店",
    "電設",
    "薬品",
    "化成",
    "住宅",
    "物流",
    "技研",
    "開発",
    "観光",
    "水産",
    "デザイン",
    "ホールディングス",
    "サービス",
    "フーズ",
)
_RESELLER_SUFFIXES: Final = (
    "システム",
    "情報システム",
    "ビジネスサービス",
    "OA販売",
    "ITソリューションズ",
    "コンピュータ",
    "事務機",
)
_IMPLEMENTATION_SUFFIXES: Final = (
    "導入支援",
    "クラウド導入センター",
    "ITコンサルティング",
    "システム導入サービス",
    "経営支援",
)
_INFO_NAME_SUFFIXES: Final = (
    "本社",
    "東京本社",
    "本店",
    "経理部",
    "管理本部",
    "大阪支店",
    "名古屋営業所",
)

# (prefecture, city, first three digits of its postal codes, weight)
_PLACES: Final = (
    ("東京都", "千代田区", 100, 6),
    ("東京都", "中央区", 103, 6),
    ("東京都", "港区", 105, 6),
    ("東京都", "新宿区", 160, 5),
    ("東京都", "渋谷区", 150, 5),
    ("東京都", "品川区", 141, 4),
    ("東京都", "世田谷区", 154, 4),
    ("東京都", "八王子市", 192, 2),
    ("神奈川県", "横浜市西区", 220, 4),
    ("神奈川県", "川崎市中原区", 211, 3),
    ("神奈川県", "相模原市中央区", 252, 2),
    ("埼玉県", "さいたま市大宮区", 330, 3),
    ("千葉県", "千葉市中央区", 260, 3),
    ("茨城県", "水戸市", 310, 1),
    ("栃木県", "宇都宮市", 320, 1),
    ("群馬県", "高崎市", 370, 1),
    ("北海道", "札幌市中央区", 60, 3),
    ("宮城県", "仙台市青葉区", 980, 2),
    ("福島県", "郡山市", 963, 1),
    ("新潟県", "新潟市中央区", 951, 1),
    ("長野県", "松本市", 390, 1),
    ("静岡県", "静岡市葵区", 420, 2),
    ("静岡県", "浜松市中央区", 430, 1),
    ("愛知県", "名古屋市中区", 460, 4),
    ("愛知県", "豊田市", 471, 1),
    ("岐阜県", "岐阜市", 500, 1),
    ("石川県", "金沢市", 920, 1),
    ("京都府", "京都市下京区", 600, 2),
    ("大阪府", "大阪市北区", 530, 4),
    ("大阪府", "大阪市中央区", 540, 4),
    ("大阪府", "堺市堺区", 590, 1),
    ("兵庫県", "神戸市中央区", 650, 2),
    ("奈良県", "奈良市", 630, 1),
    ("岡山県", "岡山市北区", 700, 1),
    ("広島県", "広島市中区", 730, 2),
    ("香川県", "高松市", 760, 1),
    ("愛媛県", "松山市", 790, 1),
    ("福岡県", "福岡市博多区", 812, 3),
    ("福岡県", "北九州市小倉北区", 802, 1),
    ("熊本県", "熊本市中央区", 860, 1),
    ("鹿児島県", "鹿児島市", 890, 1),
    ("沖縄県", "那覇市", 900, 1),
)
_PLACE_WEIGHTS: Final = tuple(accumulate(p[3] for p in _PLACES))
_TOWNS: Final = (
    "本町",
    "栄町",
    "中央",
    "緑町",
    "旭町",
    "錦町",
    "大手町",
    "駅前",
    "新町",
    "東町",
    "西町",
    "南町",
    "北町",
    "若葉町",
    "桜町",
    "幸町",
    "末広町",
    "寿町",
    "宮前",
    "青葉台",
)
_BUILDINGS: Final = ("第一ビル", "センタービル", "ビジネスプラザ", "スクエア", "タワー", "会館")

_DOMAIN_WEIGHTS: Final = tuple(accumulate((45, 25, 15, 15)))
_PRODUCTS: Final = tuple(Product)
_USERS_PER_CUSTOMER: Final = (1, 2, 3, 4, 5, 6, 7, 8)
_MAX_USERS: Final = _USERS_PER_CUSTOMER[-1]
_USER_COUNT_WEIGHTS: Final = tuple(accumulate((25, 20, 18, 12, 10, 7, 5, 3)))
_PRODUCT_COUNT_WEIGHTS: Final = tuple(accumulate((50, 30, 20)))
_ROLE_USER_IDS: Final = ("keiri", "soumu", "jinji", "eigyo", "kanri", "shacho", "jimu")
# `admin2` is a near miss: §4 matches the whole user id `admin`, so it is a plain system admin.
_SYSADMIN_USER_IDS: Final = ("sysadm", "kanri", "admin2", "itkanri", "system")
_GROUP_ACCOUNTS: Final = (
    ("keiri-group", "経理部 共有"),
    ("tenpo01", "店舗 共有"),
    ("shiten", "支店 共有"),
    ("soumu-group", "総務部 共有"),
)
_SUPPRESSION_WEIGHTS: Final = tuple(accumulate((70, 10, 20)))
_SUPPRESSION_REASONS: Final = (
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.COMPLAINT,
    SuppressionReason.MANUAL,
)

# Background rates (per customer or per address) on top of the planted edge cases.
_RESELLER_RATE: Final = 0.30
_FREE_RATE: Final = 0.30
_OEM_RATE: Final = 0.03
_SUSPENDED_RATE: Final = 0.04
_TERMINATED_RATE: Final = 0.08
_LEGACY_ADMIN_RATE: Final = 0.45  # customers before the cutoff (or OEM) that still have `admin`
_LATE_ADMIN_RATE: Final = 0.003  # non-OEM customers after the cutoff that have one anyway
_BILLING_SAME_PERSON_RATE: Final = 0.08
_BILLING_FIRM_RATE: Final = 0.04
_BILLING_RATE: Final = 0.60
_SYSADMIN_IS_MANAGER_RATE: Final = 0.25
_GROUP_ACCOUNT_RATE: Final = 0.06
_NOISE_RATE: Final = 0.015  # an address is dirty (missing, invalid, full-width, case, spaces)
_SUPPRESSION_RATE: Final = 0.003
_PRODUCT_TERMINATED_RATE: Final = 0.08

_PLANTED_REASONS: Final = {
    EdgeCase.SUPPRESSED_HARD_BOUNCE: SuppressionReason.HARD_BOUNCE,
    EdgeCase.SUPPRESSED_COMPLAINT: SuppressionReason.COMPLAINT,
    EdgeCase.SUPPRESSED_MANUAL: SuppressionReason.MANUAL,
}
_FIRST_APPLIED: Final = date(2012, 4, 1)
_FIRST_SUPPRESSION: Final = date(2020, 1, 1)
_CONTROL_NAMES: Final = ("{sei} {mei}\r\nBcc: x@example.com", "{sei}\t{mei}", "{sei} {mei}\n")
_NOT_ISO_2022_JP: Final = (
    "株式会社髙橋{suffix}",
    "有限会社𠮷野{suffix}",
    "合同会社{stem}{suffix}①",
)
_HTML_SPECIAL: Final = (
    "株式会社<エー&ビー>",
    '有限会社"{stem}"&{suffix}',
    "{stem}<{suffix}> & Co.株式会社",
)
_LONG_NAME: Final = (
    "株式会社{stem}インターナショナル・ビジネス・ソリューションズ・アンド・コンサルティング"
    "・ジャパン・ホールディングス{suffix}"
)


# --- public values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What `generate` wrote, for the CLI line and for callers that check the plant."""

    out_dir: Path
    seed: int
    customers: int
    partners: int
    rows: Mapping[str, int] = field(default_factory=dict)  # data rows per file
    planted: Mapping[EdgeCase, int] = field(default_factory=dict)

    def line(self) -> str:
        """One line for an operator: where, how many rows, how many edge cases."""
        counts = ", ".join(f"{name.removesuffix('.csv')} {n}" for name, n in self.rows.items())
        kinds = sum(1 for n in self.planted.values() if n > 0)
        return (
            f"wrote demo data to {self.out_dir} (seed {self.seed}): {counts};"
            f" {kinds}/{len(EdgeCase)} edge cases planted"
        )


# --- drafts: one account's rows before they are written --------------------------------------


@dataclass(slots=True)
class _Person:
    sei: str
    mei: str
    sei_romaji: str
    mei_romaji: str

    @property
    def name(self) -> str:
        return f"{self.sei} {self.mei}"


@dataclass(slots=True)
class _ContactDraft:
    role: MyPageRole
    name: str
    email: str


@dataclass(slots=True)
class _UserDraft:
    user_id: str
    name: str
    email: str
    is_system_admin: bool
    account_type: AccountType = AccountType.NORMAL
    status: UserStatus = UserStatus.ACTIVE


@dataclass(slots=True)
class _CustomerDraft:
    corp_id: str
    company_name: str
    channel: Channel
    reseller_partner_id: str
    plan: Plan
    status: ContractStatus
    applied_on: date
    is_oem: bool
    postal_code: str
    address: str
    info_name_suffix: str
    info_address: str
    domain: str
    admin: tuple[str, bool] | None = None  # the legacy `admin` user id and its flag
    contacts: list[_ContactDraft] = field(default_factory=list)
    users: list[_UserDraft] = field(default_factory=list)
    suppressions: list[tuple[str, SuppressionReason]] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return self.corp_id.lower()

    def sysadmins(self) -> list[_UserDraft]:
        return [
            u
            for u in self.users
            if u.is_system_admin
            and u.account_type is AccountType.NORMAL
            and u.user_id.lower() != "admin"
        ]


@dataclass(slots=True)
class _PartnerContactDraft:
    contact_id: str
    name: str
    email: str
    role: ContactRole
    certified_until: date | None
    status: ContactStatus = ContactStatus.ACTIVE


@dataclass(slots=True)
class _PartnerDraft:
    partner_id: str
    name: str
    kind: PartnerKind
    postal_code: str
    address: str
    is_accounting_firm: bool
    status: PartnerStatus = PartnerStatus.ACTIVE
    contacts: list[_PartnerContactDraft] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Firm:
    """An accounting firm that many customers register as their billing contact."""

    name: str
    email: str


# --- e-mail spellings --------------------------------------------------------------------------


def _full_width(text: str) -> str:
    # NFKC maps these back exactly (§4 normalization, warning EMAIL_NORMALIZED).
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def _upper_domain(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}@{domain.upper()}"


def _title_case(address: str) -> str:
    local, _, domain = address.partition("@")
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


def _deliverable(address: str) -> bool:
    """A clean address, as the ones a bounce or complaint can come back from."""
    return (
        address.isascii()
        and address.count("@") == 1
        and address == address.strip()
        and (not address.endswith(".") and address.partition("@")[2] in DEMO_DOMAINS)
    )


# --- the generator ------------------------------------------------------------------------------


class _Sinks:
    """The seven CSV writers, written in step (§3: UTF-8, header row, RFC 4180 via csv)."""

    _BATCH: Final = 4096  # rows held per file before they go to the csv writer

    def __init__(self, stack: ExitStack, out_dir: Path) -> None:
        self.rows: dict[str, int] = dict.fromkeys(FILES, 0)
        self._writers: dict[str, Any] = {}
        self._pending: dict[str, list[Sequence[str]]] = {name: [] for name in FILES}
        for name, header in HEADERS.items():
            handle = stack.enter_context(
                (out_dir / name).open("w", encoding="utf-8", newline="", buffering=1 << 20)
            )
            writer = csv.writer(handle)
            writer.writerow(header)
            self._writers[name] = writer
        stack.callback(self.flush)  # runs before the files close (LIFO)

    def write(self, name: str, rows: Sequence[Sequence[str]]) -> None:
        pending = self._pending[name]
        pending.extend(rows)
        self.rows[name] += len(rows)
        if len(pending) >= self._BATCH:
            self._writers[name].writerows(pending)
            pending.clear()

    def flush(self) -> None:
        for name, pending in self._pending.items():
            self._writers[name].writerows(pending)
            pending.clear()


class _Generator:
    """Drafts accounts from one random stream; the order of draws is part of the output."""

    def __init__(self, rng: random.Random, customers: int, sinks: _Sinks) -> None:
        self.rng = rng
        self.random = rng.random  # bound once: the hot path draws millions of numbers
        self.customers = customers
        self.sinks = sinks
        self.planted: dict[EdgeCase, int] = dict.fromkeys(EdgeCase, 0)
        self.suppressed: set[str] = set()
        self.next_corp = 210_000_000
        self.partners: list[_PartnerDraft] = []
        self.resellers: list[str] = []
        self.advisors: list[_PartnerContactDraft] = []
        self.firms: list[_Firm] = []

    # -- small draws (cheaper than random.choice/randint, and as deterministic) --

    def pick(self, seq: Sequence[_T]) -> _T:
        return seq[int(self.random() * len(seq))]

    def weighted(self, seq: Sequence[_T], cum_weights: Sequence[int]) -> _T:
        return seq[bisect_right(cum_weights, self.random() * cum_weights[-1])]

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def person(self) -> _Person:
        sei, sei_romaji = (
            self.pick(_RARE_SURNAMES)
            if self.random() < _RARE_SURNAME_RATE
            else self.pick(_SURNAMES)
        )
        mei, mei_romaji = self.pick(_GIVEN_NAMES)
        return _Person(sei, mei, sei_romaji, mei_romaji)

    def domain(self) -> str:
        return self.weighted(DEMO_DOMAINS, _DOMAIN_WEIGHTS)

    def address(self) -> tuple[str, str]:
        pref, city, prefix, _ = self.weighted(_PLACES, _PLACE_WEIGHTS)
        postal = f"{prefix:03d}-{int(self.random() * 10_000):04d}"
        street = (
            f"{pref}{city}{self.pick(_TOWNS)}{self.between(1, 8)}丁目"
            f"{self.between(1, 30)}-{self.between(1, 20)}"
        )
        if self.random() < 0.4:
            street += f" {self.pick(_STEMS)[0]}{self.pick(_BUILDINGS)}{self.between(2, 12)}F"
        return postal, street

    def day_between(self, first: date, last: date) -> date:
        return date.fromordinal(self.between(first.toordinal(), last.toordinal()))

    def stem(self) -> tuple[str, str]:
        return self.pick(_SURNAMES) if self.random() < 0.25 else self.pick(_STEMS)

    def company_name(self) -> str:
        stem = self.stem()[0]
        r = self.random()
        if r < 0.04:
            return f"税理士法人{stem}会計"
        if r < 0.07:
            return f"{self.pick(_SURNAMES)[0]}会計事務所"
        if r < 0.09:
            return f"医療法人社団{stem}会"
        suffix = self.pick(_SUFFIXES)
        form = "有限会社" if r < 0.30 else "合同会社" if r < 0.40 else "株式会社"
        if form != "合同会社" and self.random() < 0.35:
            return f"{stem}{suffix}{form}"
        return f"{form}{stem}{suffix}"

    def suppression_row(self, email: str, reason: SuppressionReason) -> list[str] | None:
        key = dedupe_key(email)  # §3: one row per normalized address
        if key is None or key in self.suppressed:
            return None
        self.suppressed.add(key)
        created = self.day_between(_FIRST_SUPPRESSION, DEMO_AS_OF - timedelta(days=1))
        return [email, reason, created.isoformat()]

    def random_reason(self) -> SuppressionReason:
        return self.weighted(_SUPPRESSION_REASONS, _SUPPRESSION_WEIGHTS)

    def noisy(self, email: str) -> str:
        """Background dirt on an otherwise clean address, at the rate real registers have."""
        if self.random() >= _NOISE_RATE:
            return email
        return self.pick(
            (
                "",
                " ",
                email.replace("@", "."),
                email + ".",
                _full_width(email),
                _upper_domain(email),
                _upper_domain(email),
                f" {email}",
                f"{email} ",
            )
        )

    # -- partners: small enough to hold in memory, written first --

    def make_partners(self) -> None:
        rng = self.rng
        count = max(_MIN_PARTNERS, self.customers // _CUSTOMERS_PER_PARTNER)
        resellers = round(count * 0.35)
        partners = round(count * 0.30)
        kinds = (
            [PartnerKind.RESELLER] * resellers
            + [PartnerKind.PARTNER] * partners
            + [PartnerKind.IMPLEMENTATION] * (count - resellers - partners)
        )
        rng.shuffle(kinds)
        next_partner, next_contact = 3_100_000, 41_000_000
        for kind in kinds:
            next_partner += self.between(1, 5)
            postal, street = self.address()
            name, firm = self.partner_name(kind)
            draft = _PartnerDraft(f"P{next_partner:07d}", name, kind, postal, street, firm)
            domain = self.domain()
            roles = self.partner_roles(kind)
            for role in roles:
                next_contact += self.between(1, 3)
                contact_id = f"K{next_contact:08d}"
                p = self.person()
                certified = (
                    self.certified_until() if role is ContactRole.CERTIFIED_IMPLEMENTER else None
                )
                email = f"{p.mei_romaji}.{p.sei_romaji}.{contact_id.lower()}@{domain}"
                status = ContactStatus.INACTIVE if self.random() < 0.04 else ContactStatus.ACTIVE
                draft.contacts.append(
                    _PartnerContactDraft(contact_id, p.name, email, role, certified, status)
                )
            self.partners.append(draft)
        self.plant_partners()
        self.resellers = [
            p.partner_id
            for p in self.partners
            if p.kind is PartnerKind.RESELLER and p.status is PartnerStatus.ACTIVE
        ]
        usable = [
            c
            for p in self.partners
            if p.status is PartnerStatus.ACTIVE
            for c in p.contacts
            if c.status is ContactStatus.ACTIVE and c.role is ContactRole.CONTACT
        ]
        firm_ids = {c.contact_id for p in self.partners if p.is_accounting_firm for c in p.contacts}
        self.advisors = [c for c in usable if c.contact_id in firm_ids] or usable
        self.write_partners()

    def partner_name(self, kind: PartnerKind) -> tuple[str, bool]:
        stem = self.pick(_STEMS)[0]
        form = self.pick(("株式会社", "株式会社", "有限会社", "合同会社"))
        if kind is PartnerKind.RESELLER:
            return f"{form}{stem}{self.pick(_RESELLER_SUFFIXES)}", False
        if kind is PartnerKind.IMPLEMENTATION:
            return f"{form}{stem}{self.pick(_IMPLEMENTATION_SUFFIXES)}", False
        r = self.random()
        if r < 0.3:
            return f"税理士法人{stem}会計", True
        if r < 0.5:
            return f"{self.pick(_SURNAMES)[0]}会計事務所", True
        if r < 0.6:
            return f"社会保険労務士法人{stem}", False
        return f"{form}{stem}コンサルティング", False

    def partner_roles(self, kind: PartnerKind) -> list[ContactRole]:
        if kind is PartnerKind.IMPLEMENTATION:
            roles = [ContactRole.CERTIFIED_IMPLEMENTER] * self.between(2, 4)
            if self.random() < 0.3:
                roles[0] = ContactRole.CONTACT
            return roles
        roles = [ContactRole.CONTACT] * self.between(1, 3)
        if kind is PartnerKind.RESELLER and self.random() < 0.2:
            roles.append(ContactRole.CERTIFIED_IMPLEMENTER)  # resellers that also implement
        return roles

    def certified_until(self) -> date | None:
        r = self.random()
        if r < 0.05:
            return None
        if r < 0.08:
            return DEMO_AS_OF
        if r < 0.20:
            return DEMO_AS_OF - timedelta(days=self.between(1, 700))
        return DEMO_AS_OF + timedelta(days=self.between(1, 900))

    def plant_partners(self) -> None:
        rng = self.rng
        reps = max(_MIN_PLANTED, len(self.partners) // _MIN_PARTNERS)
        first_reseller = next(
            (i for i, p in enumerate(self.partners) if p.kind is PartnerKind.RESELLER), -1
        )
        others = [i for i in range(len(self.partners)) if i != first_reseller]
        for i in rng.sample(others, min(reps, len(others))):
            self.partners[i].status = PartnerStatus.TERMINATED
            self.planted[EdgeCase.PARTNER_TERMINATED] += 1
        clean = [
            c
            for p in self.partners
            if p.status is PartnerStatus.ACTIVE
            for c in p.contacts
            if c.status is ContactStatus.ACTIVE
        ]
        contacts = [c for c in clean if c.role is ContactRole.CONTACT]
        certified = [c for c in clean if c.role is ContactRole.CERTIFIED_IMPLEMENTER]
        chosen = rng.sample(contacts, min(2 * reps, len(contacts)))
        for c in chosen[:reps]:
            c.status = ContactStatus.INACTIVE
            self.planted[EdgeCase.CONTACT_INACTIVE] += 1
        for c in chosen[reps:]:
            c.certified_until = DEMO_AS_OF + timedelta(days=self.between(-300, 300))
            self.planted[EdgeCase.CONTACT_WITH_CERTIFIED_UNTIL] += 1
        variants = (
            (EdgeCase.CERTIFICATION_EXPIRED, DEMO_AS_OF - timedelta(days=1)),
            (EdgeCase.CERTIFICATION_EMPTY, None),
            (EdgeCase.CERTIFICATION_ON_AS_OF, DEMO_AS_OF),  # §4: the day itself is valid
            (EdgeCase.CERTIFICATION_FUTURE, DEMO_AS_OF + timedelta(days=1)),
        )
        picked = rng.sample(certified, min(len(variants) * reps, len(certified)))
        for n, contact in enumerate(picked):
            edge, until = variants[n % len(variants)]
            contact.certified_until = until
            self.planted[edge] += 1

    def write_partners(self) -> None:
        self.sinks.write(
            "partners.csv",
            [
                [p.partner_id, p.name, p.kind, p.status, p.postal_code, p.address]
                for p in self.partners
            ],
        )
        self.sinks.write(
            "partner_contacts.csv",
            [
                [
                    p.partner_id,
                    c.contact_id,
                    c.name,
                    c.email,
                    c.role,
                    c.certified_until.isoformat() if c.certified_until else "",
                    c.status,
                ]
                for p in self.partners
                for c in p.contacts
            ],
        )

    def make_firms(self) -> None:
        for i in range(max(5, self.customers // 500)):
            romaji = self.pick(_STEMS)[1]
            accountant = self.person()
            self.firms.append(
                _Firm(
                    f"{accountant.name}",
                    f"office{i:02d}.{romaji}-kaikei@{self.domain()}",
                )
            )

    # -- customers: streamed --

    def plan(self) -> dict[int, EdgeCase]:
        """Which customer positions carry which planted edge case (distinct positions)."""
        reps = max(_MIN_PLANTED, self.customers // _CUSTOMERS_PER_PLANT)
        edges = list(CUSTOMER_EDGE_CASES) * reps
        del edges[self.customers :]  # a tiny demo holds what fits; the summary says so
        positions = self.rng.sample(range(self.customers), len(edges))
        return dict(zip(positions, edges, strict=True))

    def make_customers(self) -> None:
        plan = self.plan()
        for index in range(self.customers):
            edge = plan.get(index)
            draft = self.customer(edge)
            self.people(draft, edge)
            contracts = self.contracts(draft)
            if edge is not None:
                self.plant(draft, edge, self.planted[edge])
                self.planted[edge] += 1
            else:
                self.suppress_some(draft)
            self.write_customer(draft, contracts)
        self.write_orphan_suppressions()

    def customer(self, edge: EdgeCase | None) -> _CustomerDraft:
        self.next_corp += self.between(1, 9)
        channel = Channel.RESELLER if self.random() < _RESELLER_RATE else Channel.DIRECT
        r = self.random()
        status = (
            ContractStatus.TERMINATED
            if r < _TERMINATED_RATE
            else ContractStatus.SUSPENDED
            if r < _TERMINATED_RATE + _SUSPENDED_RATE
            else ContractStatus.ACTIVE
        )
        postal, street = self.address()
        draft = _CustomerDraft(
            corp_id=f"C{self.next_corp:09d}",
            company_name=self.company_name(),
            channel=channel,
            reseller_partner_id="",
            plan=Plan.FREE if self.random() < _FREE_RATE else Plan.PAID,
            status=status,
            applied_on=self.day_between(_FIRST_APPLIED, DEMO_AS_OF - timedelta(days=1)),
            is_oem=self.random() < _OEM_RATE,
            postal_code=postal,
            address=street,
            info_name_suffix=self.pick(_INFO_NAME_SUFFIXES),
            info_address="〒{} {}".format(*self.address()),
            domain=self.domain(),
        )
        if edge is not None:
            # Planted accounts are direct and active so that their edge case stands alone.
            draft.channel, draft.status = Channel.DIRECT, ContractStatus.ACTIVE
            self.shape(draft, edge, self.planted[edge])
        if draft.channel is Channel.RESELLER:
            draft.reseller_partner_id = self.pick(self.resellers)
        if edge is None:
            legacy = draft.is_oem or draft.applied_on < ADMIN_CUTOFF
            rate = _LEGACY_ADMIN_RATE if legacy else _LATE_ADMIN_RATE
            if self.random() < rate:
                draft.admin = ("admin", self.random() < 0.7)
        return draft

    def shape(self, draft: _CustomerDraft, edge: EdgeCase, k: int) -> None:
        """The account-level facts of a planted edge case, before its people are drafted."""
        before = self.day_between(_FIRST_APPLIED, ADMIN_CUTOFF - timedelta(days=1))
        after = self.day_between(ADMIN_CUTOFF, DEMO_AS_OF - timedelta(days=1))
        stem, _ = self.stem()
        suffix = self.pick(_SUFFIXES)
        match edge:
            case EdgeCase.RESELLER_WITH_SYSADMIN:
                draft.channel = Channel.RESELLER
            case EdgeCase.TERMINATED_CUSTOMER:
                draft.status = ContractStatus.TERMINATED
            case EdgeCase.SUSPENDED_CUSTOMER:
                draft.status = ContractStatus.SUSPENDED
            case EdgeCase.ADMIN_FLAG_0 | EdgeCase.ADMIN_FLAG_1:
                draft.is_oem, draft.applied_on = False, before
                draft.admin = ("admin", edge is EdgeCase.ADMIN_FLAG_1)
            case EdgeCase.ADMIN_OTHER_CASE:
                draft.is_oem, draft.applied_on = False, before
                draft.admin = (("Admin", "ADMIN")[k % 2], k % 3 != 0)
            case EdgeCase.ADMIN_AFTER_CUTOFF:
                # §4: "on or after" 2019-09-24; the first one applied on the day itself.
                draft.is_oem, draft.applied_on = False, ADMIN_CUTOFF if k == 0 else after
                draft.admin = ("admin", k % 2 == 0)
            case EdgeCase.ADMIN_OEM:
                draft.is_oem, draft.applied_on = True, ADMIN_CUTOFF if k == 0 else after
                draft.admin = ("admin", True)
            case EdgeCase.ADMIN_BEFORE_CUTOFF:
                draft.is_oem = False
                draft.applied_on = ADMIN_CUTOFF - timedelta(days=1) if k == 0 else before
                draft.admin = ("admin", True)
            case EdgeCase.COMPANY_NOT_ISO_2022_JP:
                template = _NOT_ISO_2022_JP[k % len(_NOT_ISO_2022_JP)]
                draft.company_name = template.format(stem=stem, suffix=suffix)
            case EdgeCase.COMPANY_HTML_SPECIAL:
                template = _HTML_SPECIAL[k % len(_HTML_SPECIAL)]
                draft.company_name = template.format(stem=stem, suffix=suffix)
            case EdgeCase.COMPANY_LONG_NAME:
                draft.company_name = _LONG_NAME.format(stem=stem, suffix=suffix)
            case _:
                pass

    def people(self, draft: _CustomerDraft, edge: EdgeCase | None) -> None:
        """My Page contacts and user IDs; only background accounts get background dirt."""
        clean = edge is not None
        manager = self.person()
        manager_email = f"{manager.mei_romaji}.{manager.sei_romaji}.{draft.tag}@{draft.domain}"
        if edge is not EdgeCase.UNREACHABLE:
            draft.contacts.append(
                _ContactDraft(MyPageRole.CONTRACT_MANAGER, manager.name, manager_email)
            )
            r = self.random()
            if r < _BILLING_SAME_PERSON_RATE:
                draft.contacts.append(
                    _ContactDraft(MyPageRole.BILLING, manager.name, manager_email)
                )
            elif r < _BILLING_SAME_PERSON_RATE + _BILLING_FIRM_RATE:
                firm = self.pick(self.firms)
                draft.contacts.append(_ContactDraft(MyPageRole.BILLING, firm.name, firm.email))
            elif r < _BILLING_RATE:
                p = self.person()
                email = f"{p.mei_romaji}.{p.sei_romaji}.keiri.{draft.tag}@{draft.domain}"
                draft.contacts.append(_ContactDraft(MyPageRole.BILLING, p.name, email))
        count = self.weighted(_USERS_PER_CUSTOMER, _USER_COUNT_WEIGHTS)
        taken: set[str] = set()
        if draft.admin is not None:
            user_id, flag = draft.admin
            p = self.person()
            email = f"{p.mei_romaji}.{p.sei_romaji}.admin.{draft.tag}@{draft.domain}"
            draft.users.append(_UserDraft(user_id, p.name, email, flag))
            taken.add("admin")
            count -= 1
        if edge is EdgeCase.UNREACHABLE:
            sysadmins = 0
        elif draft.admin is not None:
            sysadmins = self.between(0, 1)
        else:
            sysadmins = 1 if self.random() < 0.65 else 2
        for i in range(count):
            is_admin = i < sysadmins
            if is_admin and i == 0 and self.random() < _SYSADMIN_IS_MANAGER_RATE and draft.contacts:
                p, email = manager, manager_email  # the contract manager set the account up
                user_id = self.user_id(p, taken, is_admin)
            else:
                p = self.person()
                user_id = self.user_id(p, taken, is_admin)
                email = self.user_email(p, user_id, draft)
            user = _UserDraft(user_id, p.name, email, is_admin)
            if not clean and user_id != "admin":
                r = self.random()
                user.status = (
                    UserStatus.LOCKED
                    if r < 0.04
                    else UserStatus.DELETED
                    if r < 0.08
                    else UserStatus.ACTIVE
                )
            draft.users.append(user)
        if not clean and 3 <= len(draft.users) < _MAX_USERS and self.random() < _GROUP_ACCOUNT_RATE:
            self.group_account(draft, taken, self.random() < 0.25)
        if not clean:
            for c in draft.contacts:
                c.email = self.noisy(c.email)
            for u in draft.users:
                u.email = self.noisy(u.email)

    def user_id(self, p: _Person, taken: set[str], is_admin: bool) -> str:
        r = self.random()
        if is_admin and r < 0.3:
            base = self.pick(_SYSADMIN_USER_IDS)
        elif r < 0.45:
            base = self.pick(_ROLE_USER_IDS)
        elif r < 0.6:
            base = f"{p.mei_romaji[0]}.{p.sei_romaji}"
        else:
            base = f"{p.sei_romaji}01"
        user_id, n = base, 1
        while user_id in taken:  # unique per customer, case-insensitively (all lower-case)
            n += 1
            user_id = f"{base.rstrip('0123456789')}{n:02d}"
        taken.add(user_id)
        return user_id

    def user_email(self, p: _Person, user_id: str, draft: _CustomerDraft) -> str:
        # A person-derived id (tanaka01, t.tanaka) is the local part; a role id (keiri) is not.
        local = user_id if p.sei_romaji in user_id else f"{p.mei_romaji}.{p.sei_romaji}.{user_id}"
        return f"{local}.{draft.tag}@{draft.domain}"

    def group_account(self, draft: _CustomerDraft, taken: set[str], flag: bool) -> None:
        self.make_room(draft)
        user_id, name = self.pick(_GROUP_ACCOUNTS)
        while user_id in taken:
            user_id += "2"
        taken.add(user_id)
        email = f"{user_id}.{draft.tag}@{draft.domain}"
        draft.users.append(_UserDraft(user_id, name, email, flag, AccountType.GROUP))

    def contracts(self, draft: _CustomerDraft) -> list[list[str]]:
        rng = self.rng
        count = self.weighted((1, 2, 3), _PRODUCT_COUNT_WEIGHTS)
        products = sorted(rng.sample(_PRODUCTS, count), key=_PRODUCTS.index)
        if draft.status is ContractStatus.TERMINATED:
            statuses = [ProductStatus.TERMINATED] * count
        else:
            statuses = [
                ProductStatus.TERMINATED
                if self.random() < _PRODUCT_TERMINATED_RATE
                else ProductStatus.ACTIVE
                for _ in products
            ]
            if ProductStatus.ACTIVE not in statuses:
                statuses[0] = ProductStatus.ACTIVE  # a live customer uses at least one product
        return [[draft.corp_id, p, s] for p, s in zip(products, statuses, strict=True)]

    def plant(self, draft: _CustomerDraft, edge: EdgeCase, k: int) -> None:
        """The person-level facts of a planted edge case, after its people are drafted."""
        manager = draft.contacts[0] if draft.contacts else None
        admins = draft.sysadmins()
        # e-mail cases land on the contract manager or, every other time, a system admin
        target: _ContactDraft | _UserDraft | None = admins[0] if k % 2 and admins else manager
        match edge:
            case EdgeCase.GROUP_ACCOUNT_SYSADMIN:
                self.group_account(draft, {u.user_id.lower() for u in draft.users}, True)
            case EdgeCase.LOCKED_SYSADMIN | EdgeCase.DELETED_SYSADMIN:
                user = admins[0] if admins else self.add_sysadmin(draft)
                user.status = (
                    UserStatus.LOCKED if edge is EdgeCase.LOCKED_SYSADMIN else UserStatus.DELETED
                )
            case EdgeCase.RESELLER_WITH_SYSADMIN:
                if not admins:
                    self.add_sysadmin(draft)
            case EdgeCase.EMAIL_EMPTY if target:
                target.email = ""
            case EdgeCase.EMAIL_SPACES_ONLY if target:
                target.email = " " * (k % 3 + 1)
            case EdgeCase.EMAIL_NO_AT if target:
                target.email = target.email.replace("@", ".")
            case EdgeCase.EMAIL_DOUBLE_AT if target:
                target.email = target.email.replace("@", "@@" if k % 2 else "@mail@")
            case EdgeCase.EMAIL_TRAILING_DOT if target:
                target.email += "."
            case EdgeCase.EMAIL_FULL_WIDTH if target:
                target.email = _full_width(target.email)
            case EdgeCase.EMAIL_UPPER_CASE_DOMAIN if target:
                target.email = _upper_domain(target.email) if k % 2 else _title_case(target.email)
            case EdgeCase.EMAIL_SURROUNDING_SPACES if target:
                target.email = (f" {target.email}", f"{target.email}  ", f" {target.email} ")[k % 3]
            case (
                EdgeCase.SUPPRESSED_HARD_BOUNCE
                | EdgeCase.SUPPRESSED_COMPLAINT
                | EdgeCase.SUPPRESSED_MANUAL
            ) if manager:
                draft.suppressions.append((manager.email, _PLANTED_REASONS[edge]))
            case EdgeCase.SUPPRESSED_OTHER_CASE if manager:
                # a spelling no source row uses (a system admin may share the address)
                listed = manager.email.upper() if k % 2 else _upper_domain(manager.email)
                if k % 2 == 0:
                    manager.email = _title_case(manager.email)
                draft.suppressions.append((listed, self.random_reason()))
            case EdgeCase.DUPLICATE_IN_CUSTOMER if manager:
                same_person = k % 2 == 0
                name = manager.name if same_person else self.person().name
                email = manager.email if same_person else _title_case(manager.email)
                self.set_billing(draft, name, email)
            case EdgeCase.DUPLICATE_ACROSS_CUSTOMERS:
                firm = self.firms[0]  # one 会計事務所 that many customers hand billing to
                self.set_billing(draft, firm.name, firm.email)
            case EdgeCase.DUPLICATE_CUSTOMER_PARTNER:
                advisor = self.pick(self.advisors)
                self.set_billing(draft, advisor.name, advisor.email)
            case EdgeCase.NAME_CONTROL_CHARACTERS:
                holder: _ContactDraft | _UserDraft | None = (
                    admins[0] if k % 3 == 1 and admins else manager
                )
                if holder is not None:
                    sei, _, mei = holder.name.partition(" ")
                    holder.name = _CONTROL_NAMES[k % len(_CONTROL_NAMES)].format(sei=sei, mei=mei)
            case _:
                pass

    def add_sysadmin(self, draft: _CustomerDraft) -> _UserDraft:
        self.make_room(draft)
        p = self.person()
        user_id = self.user_id(p, {u.user_id.lower() for u in draft.users}, True)
        user = _UserDraft(user_id, p.name, self.user_email(p, user_id, draft), True)
        draft.users.append(user)
        return user

    def make_room(self, draft: _CustomerDraft) -> None:
        """Keep a planted user within the 1-8 users a customer has, dropping a plain one."""
        if len(draft.users) >= _MAX_USERS:
            plain = [
                u for u in draft.users if not u.is_system_admin and u.user_id.lower() != "admin"
            ]
            draft.users.remove(plain[-1])

    def set_billing(self, draft: _CustomerDraft, name: str, email: str) -> None:
        draft.contacts = [c for c in draft.contacts if c.role is not MyPageRole.BILLING]
        draft.contacts.append(_ContactDraft(MyPageRole.BILLING, name, email))

    def suppress_some(self, draft: _CustomerDraft) -> None:
        for email in [c.email for c in draft.contacts] + [u.email for u in draft.users]:
            if self.random() < _SUPPRESSION_RATE and _deliverable(email):
                draft.suppressions.append((email, self.random_reason()))

    def write_customer(self, d: _CustomerDraft, contracts: list[list[str]]) -> None:
        sinks = self.sinks
        sinks.write(
            "customers.csv",
            [
                [
                    d.corp_id,
                    d.company_name,
                    d.channel,
                    d.reseller_partner_id,
                    d.plan,
                    d.status,
                    d.applied_on.isoformat(),
                    "1" if d.is_oem else "0",
                    d.postal_code,
                    d.address,
                    # §2: company info differs from My Page on purpose; it must never be mailed.
                    f"{d.company_name} {d.info_name_suffix}",
                    d.info_address,
                ]
            ],
        )
        sinks.write(
            "mypage_contacts.csv", [[d.corp_id, c.role, c.name, c.email] for c in d.contacts]
        )
        sinks.write(
            "users.csv",
            [
                [
                    d.corp_id,
                    u.user_id,
                    u.name,
                    u.email,
                    "1" if u.is_system_admin else "0",
                    u.account_type,
                    u.status,
                ]
                for u in d.users
            ],
        )
        sinks.write("contracts.csv", contracts)
        rows = [self.suppression_row(email, reason) for email, reason in d.suppressions]
        sinks.write("suppressions.csv", [row for row in rows if row is not None])

    def write_orphan_suppressions(self) -> None:
        """Addresses of people who left long ago: on the list, in no source row."""
        rows: list[list[str]] = []
        for i in range(max(3, self.customers // 500)):
            p = self.person()
            email = f"{p.mei_romaji}.{p.sei_romaji}.taikai{i}@{self.domain()}"
            row = self.suppression_row(email, self.random_reason())
            if row is not None:
                rows.append(row)
        self.sinks.write("suppressions.csv", rows)


def generate(
    out_dir: Path, *, customers: int = DEFAULT_CUSTOMERS, seed: int = DEFAULT_SEED
) -> DemoSummary:
    """Write the seven CSV files of SPEC §3 into `out_dir`; the same seed gives the same bytes."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with ExitStack() as stack:
        sinks = _Sinks(stack, out_dir)
        generator = _Generator(rng, customers, sinks)
        generator.make_partners()
        generator.make_firms()
        generator.make_customers()
    return DemoSummary(
        out_dir=out_dir,
        seed=seed,
        customers=customers,
        partners=len(generator.partners),
        rows=dict(sinks.rows),
        planted=dict(generator.planted),
    )


@click.command(help="Write a realistic demo data set (SPEC §3 CSV files) into OUT_DIR.")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--customers",
    type=click.IntRange(min=1),
    default=DEFAULT_CUSTOMERS,
    show_default=True,
    help="How many customers to generate.",
)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Random seed.")
def main(out_dir: Path, customers: int, seed: int) -> None:
    """`python -m tools.demo_data`: generate and print one summary line."""
    started = time.perf_counter()
    try:
        summary = generate(out_dir, customers=customers, seed=seed)
    except OSError as exc:
        # exit 2 like every operator error of SPEC §8, not 1 (a bug)
        raise click.BadParameter(
            f"cannot write {out_dir}: {exc.strerror or exc}", param_hint="OUT_DIR"
        ) from None
    click.echo(f"{summary.line()} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
