"""Products and car models: a configurable alias catalogue, matched width-, case-, space- and hyphen-insensitively.

Matching, first rule that gives an answer wins:
1. exact: the lookup key of the text is the key of a canonical name or an alias;
2. partial: the longest alias of at least 3 characters found inside the text (理想L7 Pro → 理想L7,
   比亚迪汉EV → 汉); a Latin alias must not be glued to more letters before it, nor to a digit after it
   (L60 is not L6); two products tied for the longest → no match;
3. typo: a Latin-only text one edit (or one swap of neighbours) away from exactly one Latin alias of
   at least 4 characters with the same digits and the same first and last character (modle y →
   Model Y, camery → 凯美瑞; Model X never becomes Model Y, L5 never L6).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from services.leads.domain.cleaning.change import Change, lookup_key

MIN_PARTIAL_KEY = 3
MIN_FUZZY_KEY = 4


@dataclass(frozen=True)
class ProductResult:
    value: str | None
    changes: tuple[Change, ...] = ()
    problem: str | None = None  # unknown_product


@dataclass(frozen=True)
class Catalogue:
    """Canonical product names with their aliases, as lookup keys."""

    keys: Mapping[str, str]  # lookup key → canonical name

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> Catalogue:
        """{"Model Y": ["modely", "特斯拉Y"], ...}; the canonical name is an alias of itself."""
        keys: dict[str, str] = {}
        for canonical, aliases in mapping.items():
            for alias in (canonical, *aliases):
                key = lookup_key(alias)
                if not key:
                    continue
                if keys.get(key, canonical) != canonical:
                    raise ValueError(f"alias {alias!r} belongs to both {keys[key]!r} and {canonical!r}")
                keys[key] = canonical
        return cls(keys)

    def merged(self, other: Catalogue) -> Catalogue:
        """Both catalogues; `other` wins an alias both claim."""
        return Catalogue({**self.keys, **other.keys})

    def normalise(self, raw: str | None, field: str = "product") -> ProductResult:
        """The canonical product for a raw text, or None with problem unknown_product."""
        if raw is None or not raw.strip():
            return ProductResult(None)
        key = lookup_key(raw)
        canonical, reason = self._match(key)
        if canonical is None:
            return ProductResult(None, (), "unknown_product")
        changes = () if canonical == raw else (Change(field, reason, raw, canonical),)
        return ProductResult(canonical, changes)

    def _match(self, key: str) -> tuple[str | None, str]:
        if key in self.keys:
            return self.keys[key], "alias_matched"
        found = self._partial(key)
        if found is not None:
            return found, "partial_matched"
        return self._typo(key), "typo_matched"

    def _partial(self, key: str) -> str | None:
        best_len, best = 0, set()
        for alias, canonical in self.keys.items():
            if len(alias) < MIN_PARTIAL_KEY or len(alias) < best_len:
                continue
            for m in re.finditer(re.escape(alias), key):
                before = key[m.start() - 1] if m.start() else ""
                after = key[m.end()] if m.end() < len(key) else ""
                if alias[0].isascii() and alias[0].isalpha() and before.isascii() and before.isalpha():
                    continue
                if alias[-1].isdigit() and after.isdigit():
                    continue
                if len(alias) > best_len:
                    best_len, best = len(alias), set()
                best.add(canonical)
                break
        return next(iter(best)) if len(best) == 1 else None

    def _typo(self, key: str) -> str | None:
        if len(key) < MIN_FUZZY_KEY or not key.isascii():
            return None
        digits = re.sub(r"\D", "", key)
        hits = {
            canonical for alias, canonical in self.keys.items()
            if alias.isascii() and len(alias) >= MIN_FUZZY_KEY and re.sub(r"\D", "", alias) == digits
            and alias[0] == key[0] and alias[-1] == key[-1] and OSA.distance(key, alias, score_cutoff=1) <= 1
        }
        return next(iter(hits)) if len(hits) == 1 else None


CAR_MODELS: dict[str, list[str]] = {
    "Model 3": ["model3", "特斯拉3", "特斯拉model3", "tesla model 3", "tesla3", "小3"],
    "Model Y": ["modely", "model-y", "特斯拉Y", "特斯拉model y", "tesla model y", "teslay", "小Y"],
    "汉": ["比亚迪汉", "byd汉", "汉EV", "汉DM", "汉DM-i", "han ev", "byd han"],
    "宋PLUS": ["宋plus", "宋+", "比亚迪宋plus", "song plus", "byd song plus"],
    "秦PLUS": ["秦plus", "秦+", "比亚迪秦plus", "qin plus", "byd qin plus"],
    "理想L6": ["l6", "理想l6", "lixiang l6", "li auto l6"],
    "理想L7": ["l7", "理想l7", "lixiang l7", "li auto l7"],
    "理想L8": ["l8", "理想l8", "lixiang l8", "li auto l8"],
    "理想L9": ["l9", "理想l9", "lixiang l9", "li auto l9"],
    "小米SU7": ["su7", "小米su7", "xiaomi su7", "小米汽车su7"],
    "问界M7": ["m7", "问界m7", "aito m7", "华为问界m7", "赛力斯m7"],
    "凯美瑞": ["camry", "丰田凯美瑞", "toyota camry"],
    "雅阁": ["accord", "本田雅阁", "honda accord", "广汽本田雅阁"],
    "朗逸": ["lavida", "大众朗逸", "vw lavida", "volkswagen lavida", "上汽大众朗逸"],
    "轩逸": ["sylphy", "日产轩逸", "nissan sylphy", "东风日产轩逸"],
}
HEALTH_PRODUCTS: dict[str, list[str]] = {
    "益生菌": ["probiotic", "probiotics", "益生菌粉", "肠道益生菌", "益生元益生菌"],
    "鱼油": ["fish oil", "深海鱼油", "omega-3", "omega3", "欧米伽3", "欧米茄3"],
    "蛋白粉": ["protein powder", "protein", "乳清蛋白", "乳清蛋白粉", "whey protein", "whey", "大豆蛋白粉"],
    "胶原蛋白": ["collagen", "胶原蛋白肽", "胶原蛋白粉", "骨胶原", "collagen peptide"],
    "叶黄素": ["lutein", "叶黄素酯"],
    "辅酶Q10": ["coq10", "q10", "辅酶"],
    "钙片": ["calcium", "钙", "补钙", "碳酸钙", "钙维D"],
    "维生素C": ["vitamin c", "vc", "维c", "维他命c"],
}

CAR_CATALOGUE = Catalogue.from_mapping(CAR_MODELS)
HEALTH_CATALOGUE = Catalogue.from_mapping(HEALTH_PRODUCTS)
DEFAULT_CATALOGUE = CAR_CATALOGUE.merged(HEALTH_CATALOGUE)


def normalise(raw: str | None, catalogue: Catalogue = DEFAULT_CATALOGUE, field: str = "product") -> ProductResult:
    """The canonical product in `catalogue` (cars and health products by default)."""
    return catalogue.normalise(raw, field)
