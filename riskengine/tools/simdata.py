"""Reference data for the traffic simulator: places, networks, devices, user agents.

IP networks were chosen so that the bundled DB-IP Lite and iporigin data place them where
the table says (checked by ``tests/simulate``): a /16 and, for IPv6, a /32 per line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    """A city with the networks its residents use."""

    name: str
    country: str
    tz: str
    broadband: tuple[str, ...]  # IPv4 /16 prefixes of home and office lines
    mobile: tuple[str, ...]  # IPv4 /16 prefixes of the carriers' NAT pools
    ipv6: tuple[str, ...] = ()  # IPv6 /32 prefixes (home and mobile)
    weight: float = 1.0


CHINA: tuple[Place, ...] = (
    Place("Beijing", "CN", "Asia/Shanghai", ("123.120", "111.199", "221.219", "61.148",
          "222.128", "36.110", "106.120"), ("223.104", "117.136", "223.72"),
          ("2408:8207", "240e:3a1", "2409:8900", "240e:398"), 3.0),
    Place("Shanghai", "CN", "Asia/Shanghai", ("114.88", "180.158", "58.38", "101.88", "101.80"),
          ("183.192",), (), 3.0),
    Place("Guangzhou", "CN", "Asia/Shanghai", ("183.14", "113.87", "119.123", "14.153",
          "27.38"), ("120.229", "39.144", "117.136"), ("2409:8a55",), 3.0),
    Place("Hangzhou", "CN", "Asia/Shanghai", ("125.118", "115.196"), ("112.10",), (), 1.5),
    Place("Chengdu", "CN", "Asia/Shanghai", ("171.88", "182.148", "125.70", "218.88"),
          ("171.88",), (), 2.0),
    Place("Chongqing", "CN", "Asia/Shanghai", ("106.92",), ("106.92",), (), 1.0),
    Place("Xiamen", "CN", "Asia/Shanghai", ("36.249",), ("36.249",), (), 0.8),
    Place("Wuhan", "CN", "Asia/Shanghai", ("59.172", "171.113"), ("171.113",), (), 1.2),
)

ABROAD: tuple[Place, ...] = (
    Place("San Jose", "US", "America/Los_Angeles", ("73.15", "76.102"), ("76.102",)),
    Place("Hanover", "DE", "Europe/Berlin", ("79.200", "87.150"), ("87.150",)),
    Place("London", "GB", "Europe/London", ("86.140", "86.150"), ("86.140",)),
    Place("Tokyo", "JP", "Asia/Tokyo", ("153.156", "126.20"), ("126.20",)),
    Place("Singapore", "SG", "Asia/Singapore", ("116.86", "175.156"), ("175.156",)),
    Place("Bangkok", "TH", "Asia/Bangkok", ("49.228",), ("1.46",)),
    Place("Hong Kong", "HK", "Asia/Hong_Kong", ("58.152", "203.218", "42.98"), ("42.98",)),
    Place("Taipei", "TW", "Asia/Taipei", ("61.227", "114.34"), ("114.34",)),
)

# Exits of the commercial VPNs and cloud proxies mainland customers use (hosting ranges).
VPN_EXITS: tuple[str, ...] = ("8.210", "43.129", "119.28", "47.88")
# Addresses of proxy and bullet-proof hosting networks that attackers rent by the hour.
PROXY_HOSTING: tuple[str, ...] = ("45.83", "103.152", "5.188", "37.19", "146.70")


@dataclass(frozen=True, slots=True)
class PhoneModel:
    brand: str
    model: str
    os_name: str
    os_versions: tuple[str, ...]  # oldest first
    id_kind: str  # imei | oaid | idfv
    share: float


PHONES: tuple[PhoneModel, ...] = (
    PhoneModel("Apple", "iPhone 15", "iOS", ("17.4", "17.5", "17.6", "18.0"), "idfv", 14),
    PhoneModel("Apple", "iPhone 14", "iOS", ("16.7", "17.5", "17.6", "18.0"), "idfv", 10),
    PhoneModel("Apple", "iPhone 13", "iOS", ("16.6", "17.5", "17.6"), "idfv", 8),
    PhoneModel("HUAWEI", "HUAWEI Mate 60", "HarmonyOS", ("4.0", "4.2", "4.3"), "oaid", 10),
    PhoneModel("HUAWEI", "HUAWEI P60", "HarmonyOS", ("3.1", "4.0", "4.2"), "oaid", 5),
    PhoneModel("HONOR", "HONOR 90", "Android", ("13", "14"), "oaid", 6),
    PhoneModel("Xiaomi", "Xiaomi 14", "Android", ("14", "15"), "oaid", 8),
    PhoneModel("Xiaomi", "Redmi K70", "Android", ("14",), "oaid", 7),
    PhoneModel("OPPO", "OPPO Reno11", "Android", ("13", "14"), "oaid", 7),
    PhoneModel("vivo", "vivo X100", "Android", ("14",), "oaid", 7),
    PhoneModel("vivo", "vivo Y78", "Android", ("13",), "imei", 4),
    PhoneModel("OnePlus", "OnePlus 12", "Android", ("14",), "oaid", 3),
    PhoneModel("Samsung", "SM-S9180", "Android", ("14",), "imei", 3),
)

DESKTOP_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/108.0.0.0 Safari/537.36 QIHU 360SE",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36",
)

# The mall's own app reports itself like this, with the OS and model filled in.
APP_UA = "MallApp/8.6.2 ({os_name} {os_version}; {model}) okhttp/4.12.0"

HOME_SSIDS = ("ChinaNet-{x}", "CMCC-{x}", "TP-LINK_{x}", "HUAWEI-{x}", "MERCURY_{x}",
              "Xiaomi_{x}", "CU_{x}")
WORK_SSIDS = ("{x}-Office", "{x}-Staff", "{x}_Corp", "{x}-5G")
PUBLIC_SSIDS = ("Starbucks", "Luckin-Free", "Hilton_Guest", "HomeInn-WiFi", "Airport-Free-WiFi",
                "KFC_FREE_WIFI", "Marriott_GUEST", "Manner-Coffee", "JinJiang-Guest")

# -- external signals (Simulator(signals=True)): numbers and lists a risk service would
# hold. Sign-up farms buy numbers in bulk from a virtual operator's range, and VoIP numbers
# from plans that set them apart (the United Kingdom's 056, Japan's 050); each prefix is
# filled to 13 characters (+44 56 or +81 50 and eight digits).
FARM_PREFIX = "+86171"
VOIP_PREFIXES: tuple[str, ...] = ("+4456", "+81503")
# A range the phone-risk list rates medium: customers have numbers in it too.
MEDIUM_RISK_PREFIX = "+86170"
EMAIL_NAMES = ("li", "wang", "zhang", "liu", "chen", "yang", "zhao")
EMAIL_GIVEN = ("wei", "fang", "na", "min", "jing", "lei", "yan")
EMAIL_DOMAINS = ("qq.com", "163.com", "outlook.com", "gmail.com")

# -- drawn worlds (riskengine.tools.worlds): what the default world does not have.

# Phones on Android 9 or older: the app reads the IMEI and the SIM's IMSI and ICCID.
OLD_ANDROID: tuple[PhoneModel, ...] = (
    PhoneModel("OPPO", "OPPO A5", "Android", ("8.1",), "imei", 3),
    PhoneModel("Xiaomi", "Redmi Note 7", "Android", ("9",), "imei", 3),
    PhoneModel("HUAWEI", "HUAWEI nova 4", "Android", ("9",), "imei", 2),
    PhoneModel("vivo", "vivo Y3", "Android", ("9",), "imei", 2),
    PhoneModel("HONOR", "HONOR 8X", "Android", ("9",), "imei", 2),
)

# The mall's H5 pages in a phone's browser or in WeChat: no device record, no network type.
MOBILE_WEB_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1.230804.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 XWEB/1220067 "
    "MMWEBSDK/20240404 MicroMessenger/8.0.49.2600(0x28003133) NetType/4G Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 12; HarmonyOS; ALN-AL00; HMSCore 6.13.0.321) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/114.0.5735.196 HuaweiBrowser/15.0.4.312 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; U; Android 13; zh-CN; V2309A Build/TP1A.220624.014) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/16.6.8.1311 Mobile "
    "Safari/537.36",
)

AIRPORT_SSIDS = ("Airport-Free-WiFi", "#PEK-Free-WiFi", "Baiyun-Airport-WiFi", "#ChangiWiFi",
                 "HKAirport Free WiFi", "Narita-Free-Wi-Fi")

# The mainland carriers' IPv6 (/32s placed in CN by the bundled data), for phones on
# cellular IPv6 in cities whose table row has none.
CN_MOBILE_IPV6: tuple[str, ...] = ("2409:8900", "2409:8a1e", "2409:8c54", "240e:47e", "2408:8456")

# Mobile country codes of the places abroad, for a local SIM bought on a trip.
MCC = {"CN": "460", "US": "310", "DE": "262", "GB": "234", "JP": "440", "SG": "525", "TH": "520",
       "HK": "454", "TW": "466"}
