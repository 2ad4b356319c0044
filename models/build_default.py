"""Build the shipped default anomaly model from synthetic verified-good logins.

``python -m models.build_default`` regenerates ``models/artifacts/hst-default.joblib`` and its
card, deterministically from ``--seed``. The logins are those of ordinary customers of a
Chinese online mall: a home city with its ISPs, a phone on home Wi-Fi, at work or on the
carrier's network, daily rhythms, now and then a trip or a new phone. They go through the
real feature extractor with each user's profile learning as the service would, so the
model sees exactly the feature distribution the service produces for good logins.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from features.event import LoginEvent, NetworkType
from features.extract import extract, ip_prefix
from features.ipintel import IpIntel
from features.profile import UserProfile, Velocity, learn, sighting
from models import persistence
from models.anomaly import AnomalyModel

# (home ISP /16 networks, mobile carrier /16 networks) for a few large cities.
CITIES: dict[str, tuple[list[str], list[str]]] = {
    "Beijing": (["123.120", "111.199", "221.219", "61.148"], ["223.104", "117.136", "223.72"]),
    "Shanghai": (["114.88", "180.158", "58.38", "101.88"], ["117.135", "223.104"]),
    "Guangzhou": (["183.14", "113.87", "119.123", "14.153"], ["120.229", "39.144"]),
    "Hangzhou": (["125.118", "115.196"], ["112.10"]),
}
MODELS = [("HUAWEI Mate 60", "HarmonyOS", "4.2"), ("iPhone 15", "iOS", "17.5"),
          ("Xiaomi 14", "Android", "14"), ("OPPO Reno11", "Android", "14"),
          ("vivo X100", "Android", "14"), ("HONOR 90", "Android", "13")]
SHANGHAI_TZ = timedelta(hours=8)


def _ip(rng: random.Random, net16: str, third: int | None = None) -> str:
    return f"{net16}.{third if third is not None else rng.randrange(256)}.{rng.randrange(1, 255)}"


def generate(users: int, days: int, seed: int) -> list[LoginEvent]:
    """Good logins of ``users`` customers over ``days`` days, in time order."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    events: list[LoginEvent] = []
    for u in range(users):
        city = rng.choice(list(CITIES))
        homes, mobiles = CITIES[city]
        home = (rng.choice(homes), rng.randrange(256))
        work = (rng.choice(homes), rng.randrange(256))
        model, os_name, os_version = rng.choice(MODELS)
        device = f"d{u}"
        peaks = sorted(rng.sample([7, 8, 9, 12, 13, 19, 20, 21, 22, 23], k=3))
        rate = rng.choice([0.5, 1.0, 2.0, 3.0])
        for day in range(days):
            if rng.random() < 0.01:  # a new phone now and then
                device = f"d{u}-{day}"
            travelling = rng.random() < 0.03
            for _ in range(int(rng.expovariate(1.0 / rate))):
                hour = (rng.choice(peaks) + rng.gauss(0, 1.0)) % 24
                local = start + timedelta(days=day, hours=hour)
                where = rng.random()
                if travelling:
                    other = CITIES[rng.choice([c for c in CITIES if c != city])]
                    ip, ssid, net = _ip(rng, rng.choice(other[1])), None, NetworkType.CELLULAR
                elif where < 0.55:
                    ip, ssid, net = _ip(rng, home[0], home[1]), f"h{u}", NetworkType.WIFI
                elif where < 0.75 and day % 7 < 5:
                    ip, ssid, net = _ip(rng, work[0], work[1]), f"w{u}", NetworkType.WIFI
                else:
                    ip, ssid, net = _ip(rng, rng.choice(mobiles)), None, NetworkType.CELLULAR
                events.append(
                    LoginEvent(
                        event_id=f"e{len(events)}",
                        tenant="default",
                        user_key=f"u{u}",
                        timestamp=local - SHANGHAI_TZ,
                        ip=ip,
                        ip_key=ip,
                        ip_prefix_key=ip_prefix(ip),
                        account_kind="phone",
                        device_key=device,
                        device_model=model,
                        os_name=os_name,
                        os_version=os_version,
                        network_type=net,
                        ssid_key=ssid,
                        phone_key=f"p{u}",
                        iccid_key=f"s{u}",
                    )
                )
    events.sort(key=lambda e: e.timestamp)
    return events


def train(events: list[LoginEvent], ipintel: IpIntel, *, seed: int) -> tuple[AnomalyModel, dict]:
    """Score-then-learn over the events; calibrate on the last fifth."""
    model = AnomalyModel(seed=seed)
    profiles: dict[str, UserProfile] = {}
    held_out: list[float] = []
    cut = int(len(events) * 0.8)
    for i, event in enumerate(events):
        ip = ipintel.lookup(event.ip)
        profile = profiles.get(event.user_key, UserProfile())
        fv = extract(event, ip, profile, Velocity(ip_users_10m=0))
        if i >= cut:
            held_out.append(model.score_one(fv))
        model.learn_one(fv)
        profiles[event.user_key] = learn(profile, sighting(event, ip, fv))
    model.calibrate(held_out)
    ordered = sorted(held_out)
    metrics = {
        "held_out_good_logins": len(held_out),
        "anomaly_p50": round(ordered[len(ordered) // 2], 4),
        "anomaly_p98": round(model.calibration_[0], 4),
        "anomaly_max": round(ordered[-1], 4),
    }
    return model, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "artifacts" /
                                             persistence.SHIPPED_MODEL))
    args = parser.parse_args()
    events = generate(args.users, args.days, args.seed)
    model, metrics = train(events, IpIntel.bundled(), seed=args.seed)
    fingerprint = hashlib.sha256(
        json.dumps([args.users, args.days, args.seed, len(events)]).encode()
    ).hexdigest()[:16]
    version = f"hst-default-{fingerprint[:8]}"
    persistence.save(
        model,
        args.out,
        version=version,
        card={
            "training": {
                "source": "models.build_default synthetic verified-good logins",
                "users": args.users,
                "days": args.days,
                "seed": args.seed,
                "events": len(events),
                "window": [events[0].timestamp.isoformat(), events[-1].timestamp.isoformat()],
                "data_fingerprint": fingerprint,
            },
            "metrics": metrics,
            "hyper_parameters": {"n_trees": model.n_trees, "height": model.height,
                                 "window_size": model.window_size, "seed": model.seed},
        },
    )
    print(json.dumps({"model_version": version, "events": len(events), **metrics}))


if __name__ == "__main__":
    main()
