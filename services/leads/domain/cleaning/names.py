"""Person names: trimmed, width-normalised, stripped of emoji and punctuation, placeholders recognised.

A name is personal: changes record only the reason, never the value before or after.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from services.leads.domain.cleaning.change import Change

# The common single-character surnames (百家姓 as used today, roughly the 300 most frequent).
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪"
    "范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞"
    "颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻"
    "祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇"
    "栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊"
    "仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓"
    "修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 令狐 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 端木 西门 南宫 独孤 申屠 万俟 闻人 赫连 "
    "澹台 公冶 太史 钟离 宗政 濮阳 淳于 单于 呼延 司空 百里 东郭 仲孙 羊舌 微生 梁丘 左丘 第五 拓跋 夹谷".split()
)
TITLES = (
    "先生 女士 小姐 太太 夫人 老师 总 经理 老板 姐 哥 阿姨 叔叔 叔 大哥 大姐 师傅 医生 同学 主任 董 工 生 总监 姐姐 哥哥".split()
)
TITLE_PREFIXES = ("老",)
PLACEHOLDERS = frozenset(
    (
        "先生 女士 小姐 太太 老板 客户 顾客 用户 匿名 匿名用户 未知 无 无名 不详 没有 保密 测试 测试用户 某某 某 张三 李四 王五 "
        "赵六 姓名 名字 你好 您好 微信用户 抖音用户 游客 访客 会员 本人 我 暂无 待定 空 未填 未填写 不知道 客户先生 客户女士 "
        "test testing tester asdf asd asdfgh qwe qwer qwert qwerty zxc zxcv abc abcd xxx xx null none nil na n/a unknown "
        "anonymous undefined admin name user guest customer nobody noname aaa bbb ceshi mr mrs ms miss sir madam"
    ).split()
)
PLACEHOLDER_PATTERNS = (
    re.compile(r"([a-z0-9])\1+"),  # aaa, 111
    re.compile(r"(.)\1{2,}"),  # 啊啊啊
    re.compile(r"\d+"),  # 123
    re.compile(r"(test|测试|ceshi|user|用户|微信用户|客户|顾客|会员|游客)\d*"),
)
MIDDLE_DOTS = "•・‧∙⋅･"
LATIN_JOINERS = "-'"
EMOJI_RANGES = ((0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0xFE00, 0xFE0F), (0x1F3FB, 0x1F3FF))
EMOJI_EXTRA = {"\u200d", "\u20e3", "\ufe0f"}


@dataclass(frozen=True)
class NameResult:
    value: str | None
    surname: str | None = None
    title: str | None = None
    title_only: bool = False
    changes: tuple[Change, ...] = ()
    problem: str | None = None  # name_placeholder | name_single_character | name_empty | name_unusual_length


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\U00020000" <= ch <= "\U0002fa1f"


def _is_emoji(ch: str) -> bool:
    code = ord(ch)
    return ch in EMOJI_EXTRA or any(lo <= code <= hi for lo, hi in EMOJI_RANGES) or unicodedata.category(ch) == "So"


def _is_letter(ch: str) -> bool:
    return len(ch) == 1 and unicodedata.category(ch)[0] == "L"


def _strip_symbols(text: str) -> tuple[str, set[str]]:
    """Remove emoji, punctuation and controls; keep ·, and - ' inside Latin names."""
    reasons: set[str] = set()
    out: list[str] = []
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        prev = text[i - 1] if i else ""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if cat[0] in "LN" or ch == " ":
            out.append(ch)
        elif cat[0] == "M":
            if out and _is_letter(out[-1]):
                out.append(ch)
        elif _is_emoji(ch):
            reasons.add("emoji_removed")
        elif cat[0] == "Z":
            out.append(" ")
        elif ch in LATIN_JOINERS and prev.isascii() and prev.isalpha() and nxt.isascii() and nxt.isalpha():
            out.append(ch)
        elif (ch == "·" or ch in MIDDLE_DOTS) and _is_letter(prev) and _is_letter(nxt):
            out.append("·")
            if ch != "·":
                reasons.add("punctuation_normalised")
        else:
            reasons.add("punctuation_removed")
    return "".join(out), reasons


def _squeeze_spaces(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    # No spaces inside Chinese: 张 伟 → 张伟.
    return "".join(
        ch for i, ch in enumerate(text)
        if not (ch == " " and (_is_cjk(text[i - 1]) or _is_cjk(text[i + 1])))
    )


def _is_placeholder(text: str) -> bool:
    key = text.casefold().replace(" ", "")
    return key in PLACEHOLDERS or any(p.fullmatch(key) for p in PLACEHOLDER_PATTERNS) or key in TITLES


def surname_of(name: str) -> str | None:
    """The surname of a Chinese name (compound surnames recognised), else None."""
    if not name or not _is_cjk(name[0]):
        return None
    if name[:2] in COMPOUND_SURNAMES and len(name) >= 3:
        return name[:2]
    return name[0] if name[0] in SURNAMES else None


def _title_only(name: str) -> tuple[str, str] | None:
    """(surname, title) for 张先生, 欧阳女士, 老王; None for a full name."""
    for title in sorted(TITLES, key=len, reverse=True):
        if name.endswith(title) and len(name) > len(title):
            head = name[: -len(title)]
            if head in COMPOUND_SURNAMES or (len(head) == 1 and _is_cjk(head)):
                return head, title
    for prefix in TITLE_PREFIXES:
        if len(name) == 2 and name.startswith(prefix) and name[1] in SURNAMES:
            return name[1], prefix
    return None


def _normalise_latin_case(text: str) -> str:
    letters = [ch for ch in text if _is_letter(ch) and not _is_cjk(ch)]
    if not letters or not all(ch.isascii() for ch in letters):
        return text
    word = "".join(letters)
    if not (word.isupper() or word.islower()):
        return text
    return re.sub(r"[A-Za-z]+", lambda m: m.group(0).capitalize(), text)


def clean_name(raw: str | None) -> NameResult:
    """The cleaned name, its surname (and title when only a title is given), and what changed."""
    if raw is None:
        return NameResult(None)
    changes: list[str] = []
    text = raw.strip()
    if text != raw:
        changes.append("trimmed")
    normalised = unicodedata.normalize("NFKC", text)
    if normalised != text:
        changes.append("fullwidth_to_halfwidth")
    text, reasons = _strip_symbols(normalised)
    changes += sorted(reasons)
    if _is_placeholder(_squeeze_spaces(text)):
        return _result(None, changes + ["placeholder"], "name_placeholder")
    if any(ch.isdigit() for ch in text):
        text = "".join(ch for ch in text if not ch.isdigit())
        changes.append("digits_removed")
    squeezed = unicodedata.normalize("NFKC", _squeeze_spaces(text))
    if squeezed != text and "trimmed" not in changes and squeezed != text.strip():
        changes.append("whitespace_removed")
    elif squeezed != text and "trimmed" not in changes:
        changes.append("trimmed")
    text = squeezed
    if not text:
        return _result(None, changes, "name_empty" if raw.strip() else None)
    if _is_placeholder(text):
        return _result(None, changes + ["placeholder"], "name_placeholder")
    if len(text) == 1:
        surname = text if text in SURNAMES else None
        return NameResult(None, surname, None, False, _changes(changes + ["single_character"]), "name_single_character")
    cased = _normalise_latin_case(text)
    if cased != text:
        changes.append("latin_case_normalised")
        text = cased
    titled = _title_only(text)
    if titled is not None:
        return NameResult(text, titled[0], titled[1], True, _changes(changes))
    cjk_only = all(_is_cjk(ch) for ch in text)
    problem = "name_unusual_length" if cjk_only and len(text) > 4 else None
    surname = surname_of(text) if cjk_only and 2 <= len(text) <= 4 else None
    return NameResult(text, surname, None, False, _changes(changes), problem)


def _changes(reasons: list[str]) -> tuple[Change, ...]:
    return tuple(Change("name", r) for r in dict.fromkeys(reasons))


def _result(value: str | None, reasons: list[str], problem: str | None) -> NameResult:
    return NameResult(value, None, None, False, _changes(reasons), problem)
