use super::*;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn d(s: &str) -> Duration {
    Duration::parse(s).unwrap()
}

fn window(days: &[Weekday], start: &str, duration: &str, zone: &str) -> Window {
    Window {
        days: days.to_vec(),
        start: start.to_owned(),
        duration: d(duration),
        time_zone: zone.to_owned(),
    }
}

fn windows(ws: Vec<Window>) -> Maintenance {
    let m = Maintenance {
        windows: ws,
        ..Maintenance::default()
    };
    m.validate().unwrap();
    m
}

fn closed_opens(v: &WindowVerdict) -> Option<Timestamp> {
    match v {
        WindowVerdict::Closed { opens, .. } => *opens,
        WindowVerdict::Open { .. } => panic!("expected closed, got {v:?}"),
    }
}

const ALL: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

// ---- windows ----

#[test]
fn start_must_be_hh_mm_within_a_day() {
    for bad in [
        "25:00", "24:00", "7:00", "07:60", "07-00", "0700", "07:00:00", " 07:00", "", "０7:00",
    ] {
        let m = Maintenance {
            windows: vec![window(&[Weekday::Sat], bad, "1h", "UTC")],
            ..Maintenance::default()
        };
        assert_eq!(
            m.validate(),
            Err(RolloutError::BadStart {
                window: 0,
                value: bad.to_owned()
            }),
            "{bad:?}"
        );
    }
    for good in ["00:00", "23:59", "07:30"] {
        windows(vec![window(&[Weekday::Sat], good, "1h", "UTC")]);
    }
}

#[test]
fn each_bad_window_field_has_its_own_error() {
    let check = |w: Window, want: RolloutError| {
        let m = Maintenance {
            windows: vec![window(&[Weekday::Mon], "01:00", "1h", "UTC"), w],
            ..Maintenance::default()
        };
        assert_eq!(m.validate(), Err(want));
    };
    check(
        window(&[], "01:00", "1h", "UTC"),
        RolloutError::NoDays { window: 1 },
    );
    check(
        window(
            &[Weekday::Sat, Weekday::Sun, Weekday::Sat],
            "01:00",
            "1h",
            "UTC",
        ),
        RolloutError::DuplicateDay {
            window: 1,
            day: Weekday::Sat,
        },
    );
    check(
        window(&[Weekday::Sat], "01:00", "0s", "UTC"),
        RolloutError::BadDuration {
            window: 1,
            duration: d("0s"),
        },
    );
    check(
        window(&[Weekday::Sat], "01:00", "8d", "UTC"),
        RolloutError::BadDuration {
            window: 1,
            duration: d("8d"),
        },
    );
    for zone in [
        "Mars/Olympus_Mons",
        "",
        "Etc/Unknown",
        "../../etc/passwd",
        "CEST",
    ] {
        check(
            window(&[Weekday::Sat], "01:00", "1h", zone),
            RolloutError::BadTimeZone {
                window: 1,
                zone: zone.to_owned(),
            },
        );
    }
    // A week-long window is the longest; real zones and UTC are known.
    windows(vec![window(&ALL, "00:00", "7d", "America/New_York")]);
    windows(vec![window(&ALL, "00:00", "1h", "Asia/Kolkata")]);
    windows(vec![window(&ALL, "00:00", "1h", "UTC")]);
}

#[test]
fn counts_and_exclusions_are_checked() {
    let many = Maintenance {
        windows: vec![window(&[Weekday::Sat], "01:00", "1h", "UTC"); MAX_WINDOWS + 1],
        ..Maintenance::default()
    };
    assert_eq!(
        many.validate(),
        Err(RolloutError::TooManyWindows {
            count: MAX_WINDOWS + 1
        })
    );
    let excl = |from: &str, until: &str, reason: &str| Exclusion {
        from: t(from),
        until: t(until),
        reason: reason.to_owned(),
    };
    let m = |e: Vec<Exclusion>| Maintenance {
        exclusions: e,
        ..Maintenance::default()
    };
    assert_eq!(
        m(vec![excl(
            "2026-12-02T00:00:00Z",
            "2026-12-01T00:00:00Z",
            "x"
        )])
        .validate(),
        Err(RolloutError::ExclusionOrder {
            exclusion: 0,
            from: t("2026-12-02T00:00:00Z"),
            until: t("2026-12-01T00:00:00Z"),
        })
    );
    assert_eq!(
        m(vec![excl(
            "2026-12-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
            "x"
        )])
        .validate(),
        Err(RolloutError::ExclusionOrder {
            exclusion: 0,
            from: t("2026-12-01T00:00:00Z"),
            until: t("2026-12-01T00:00:00Z"),
        })
    );
    assert_eq!(
        m(vec![excl(
            "2026-12-01T00:00:00Z",
            "2026-12-02T00:00:00Z",
            "  "
        )])
        .validate(),
        Err(RolloutError::BadReason {
            exclusion: 0,
            chars: 2
        })
    );
    let long = "é".repeat(MAX_REASON + 1);
    assert_eq!(
        m(vec![excl(
            "2026-12-01T00:00:00Z",
            "2026-12-02T00:00:00Z",
            &long
        )])
        .validate(),
        Err(RolloutError::BadReason {
            exclusion: 0,
            chars: MAX_REASON + 1
        })
    );
    let e = excl("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", "x");
    assert_eq!(
        m(vec![e; MAX_EXCLUSIONS + 1]).validate(),
        Err(RolloutError::TooManyExclusions {
            count: MAX_EXCLUSIONS + 1
        })
    );
}

#[test]
fn serde_names_are_camel_case_and_unknown_fields_fail() {
    let m: Maintenance = serde_json::from_str(
        r#"{"windows":[{"days":["Sat","Sun"],"start":"02:00","duration":"4h","timeZone":"Europe/Berlin"}],
            "exclusions":[{"from":"2026-12-20T00:00:00Z","until":"2027-01-04T00:00:00Z","reason":"holidays"}],
            "allowSecurityUpdates":true}"#,
    )
    .unwrap();
    m.validate().unwrap();
    assert!(m.allow_security_updates);
    assert!(serde_json::from_str::<Maintenance>(r#"{"window":[]}"#).is_err());
    assert!(
        serde_json::from_str::<Window>(
            r#"{"days":["Saturday"],"start":"02:00","duration":"4h","timeZone":"UTC"}"#
        )
        .is_err()
    );
    let r: Ring = serde_json::from_str(r#""canary""#).unwrap();
    assert_eq!(r, Ring::Canary);
    assert!(serde_json::from_str::<Ring>(r#""beta""#).is_err());
    let u: Urgency = serde_json::from_str(r#""security""#).unwrap();
    assert_eq!(u, Urgency::Security);
}

#[test]
fn no_windows_means_open_until_the_next_exclusion() {
    let m = Maintenance::default();
    assert_eq!(
        next_opening(&m, t("2026-12-01T10:00:00Z"), d("1h")),
        WindowVerdict::Open { closes: None }
    );
    let m = Maintenance {
        exclusions: vec![Exclusion {
            from: t("2026-12-01T12:00:00Z"),
            until: t("2026-12-02T00:00:00Z"),
            reason: "release party".to_owned(),
        }],
        ..Maintenance::default()
    };
    assert_eq!(
        next_opening(&m, t("2026-12-01T10:00:00Z"), d("1h")),
        WindowVerdict::Open {
            closes: Some(t("2026-12-01T12:00:00Z"))
        }
    );
    // 1h30m left before the freeze: a 2h change waits for its end.
    assert_eq!(
        next_opening(&m, t("2026-12-01T10:30:00Z"), d("2h")),
        WindowVerdict::Closed {
            opens: Some(t("2026-12-02T00:00:00Z")),
            why: ClosedWhy::DoesNotFit {
                closes: t("2026-12-01T12:00:00Z"),
                needs: d("2h")
            }
        }
    );
    assert_eq!(
        next_opening(&m, t("2026-12-01T13:00:00Z"), d("1h")),
        WindowVerdict::Closed {
            opens: Some(t("2026-12-02T00:00:00Z")),
            why: ClosedWhy::Excluded {
                reason: "release party".to_owned(),
                until: t("2026-12-02T00:00:00Z")
            }
        }
    );
}

#[test]
fn window_crossing_midnight_is_open_after_midnight() {
    // Friday 22:00 UTC for 4 hours: open until Saturday 02:00.
    let m = windows(vec![window(&[Weekday::Fri], "22:00", "4h", "UTC")]);
    assert_eq!(
        next_opening(&m, t("2026-12-05T01:00:00Z"), d("30m")),
        WindowVerdict::Open {
            closes: Some(t("2026-12-05T02:00:00Z"))
        }
    );
    // Saturday 03:00: the next is next Friday.
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-12-05T03:00:00Z"), d("30m"))),
        Some(t("2026-12-11T22:00:00Z"))
    );
    // Exactly at the start: open; exactly at the end: closed.
    assert!(next_opening(&m, t("2026-12-04T22:00:00Z"), d("4h")).is_open());
    assert!(!next_opening(&m, t("2026-12-05T02:00:00Z"), d("0s")).is_open());
}

#[test]
fn window_crossing_the_end_of_the_week() {
    // Sunday 23:00 in New York (UTC-5 in December) for 3 hours: into Monday.
    let m = windows(vec![window(
        &[Weekday::Sun],
        "23:00",
        "3h",
        "America/New_York",
    )]);
    // Monday 2026-12-07 06:30 UTC is 01:30 local on Monday.
    assert_eq!(
        next_opening(&m, t("2026-12-07T06:30:00Z"), d("30m")),
        WindowVerdict::Open {
            closes: Some(t("2026-12-07T07:00:00Z"))
        }
    );
    // Asked on Monday afternoon, the next is Sunday 2026-12-13 23:00 local.
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-12-07T18:00:00Z"), d("30m"))),
        Some(t("2026-12-14T04:00:00Z"))
    );
}

#[test]
fn windows_follow_daylight_saving_time() {
    // Every day at 01:00 in Berlin: 00:00 UTC in winter, 23:00 UTC the day before in summer.
    let m = windows(vec![window(&ALL, "01:00", "2h", "Europe/Berlin")]);
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-07-01T12:00:00Z"), d("1h"))),
        Some(t("2026-07-01T23:00:00Z"))
    );
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-12-01T12:00:00Z"), d("1h"))),
        Some(t("2026-12-02T00:00:00Z"))
    );
    // Across the change on 2026-03-29 (02:00 -> 03:00 local, at 01:00 UTC): the 29th's
    // window starts 01:00 CET = 00:00 UTC, the 30th's 01:00 CEST = 23:00 UTC on the 29th.
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-03-28T03:00:00Z"), d("1h"))),
        Some(t("2026-03-29T00:00:00Z"))
    );
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-03-29T03:00:00Z"), d("1h"))),
        Some(t("2026-03-29T23:00:00Z"))
    );
}

#[test]
fn a_start_in_the_spring_gap_begins_after_it_and_a_repeated_one_at_its_first() {
    // 02:30 does not exist in Berlin on 2026-03-29: the window starts at 03:30 CEST.
    let m = windows(vec![window(
        &[Weekday::Sun],
        "02:30",
        "1h",
        "Europe/Berlin",
    )]);
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-03-28T12:00:00Z"), d("30m"))),
        Some(t("2026-03-29T01:30:00Z"))
    );
    // 02:30 happens twice on 2026-10-25: the first one (CEST, UTC+2).
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-10-24T12:00:00Z"), d("30m"))),
        Some(t("2026-10-25T00:30:00Z"))
    );
    // The duration is elapsed time: Saturday 23:00 CET for 6h ends 04:00 UTC (06:00 CEST).
    let m = windows(vec![window(
        &[Weekday::Sat],
        "23:00",
        "6h",
        "Europe/Berlin",
    )]);
    assert_eq!(
        next_opening(&m, t("2026-03-29T02:00:00Z"), d("1h")),
        WindowVerdict::Open {
            closes: Some(t("2026-03-29T04:00:00Z"))
        }
    );
}

#[test]
fn a_change_that_does_not_fit_before_the_window_closes_waits() {
    let m = windows(vec![window(&ALL, "02:00", "1h", "UTC")]);
    // 40 minutes in, 20 left: a 30-minute change waits for tomorrow's window.
    assert_eq!(
        next_opening(&m, t("2026-12-01T02:40:00Z"), d("30m")),
        WindowVerdict::Closed {
            opens: Some(t("2026-12-02T02:00:00Z")),
            why: ClosedWhy::DoesNotFit {
                closes: t("2026-12-01T03:00:00Z"),
                needs: d("30m")
            }
        }
    );
    // 30 minutes left fit exactly.
    assert_eq!(
        next_opening(&m, t("2026-12-01T02:30:00Z"), d("30m")),
        WindowVerdict::Open {
            closes: Some(t("2026-12-01T03:00:00Z"))
        }
    );
    // Longer than any window: never, and it says so.
    assert_eq!(
        next_opening(&m, t("2026-12-01T02:00:00Z"), d("2h")),
        WindowVerdict::Closed {
            opens: None,
            why: ClosedWhy::DoesNotFit {
                closes: t("2026-12-01T03:00:00Z"),
                needs: d("2h")
            }
        }
    );
    assert_eq!(
        next_opening(&m, t("2026-12-01T05:00:00Z"), d("2h")),
        WindowVerdict::Closed {
            opens: None,
            why: ClosedWhy::Outside
        }
    );
}

#[test]
fn touching_and_overlapping_windows_are_one_open_time() {
    // Mon 00:00-02:00 and Mon 01:00-03:00 UTC, and Sun 22:00-Mon 00:00 in another zone
    // (Asia/Tokyo, UTC+9: Mon 07:00 local is Sun 22:00 UTC).
    let m = windows(vec![
        window(&[Weekday::Mon], "00:00", "2h", "UTC"),
        window(&[Weekday::Mon], "01:00", "2h", "UTC"),
        window(&[Weekday::Mon], "07:00", "2h", "Asia/Tokyo"),
    ]);
    assert_eq!(
        next_opening(&m, t("2026-12-06T22:00:00Z"), d("5h")),
        WindowVerdict::Open {
            closes: Some(t("2026-12-07T03:00:00Z"))
        }
    );
}

#[test]
fn an_exclusion_cuts_a_window() {
    let mut m = windows(vec![window(&ALL, "00:00", "6h", "UTC")]);
    m.exclusions.push(Exclusion {
        from: t("2026-12-01T02:00:00Z"),
        until: t("2026-12-01T03:00:00Z"),
        reason: "database migration".to_owned(),
    });
    m.validate().unwrap();
    assert_eq!(
        next_opening(&m, t("2026-12-01T01:30:00Z"), d("1h")),
        WindowVerdict::Closed {
            opens: Some(t("2026-12-01T03:00:00Z")),
            why: ClosedWhy::DoesNotFit {
                closes: t("2026-12-01T02:00:00Z"),
                needs: d("1h")
            }
        }
    );
    assert_eq!(
        next_opening(&m, t("2026-12-01T02:10:00Z"), d("1h")),
        WindowVerdict::Closed {
            opens: Some(t("2026-12-01T03:00:00Z")),
            why: ClosedWhy::Excluded {
                reason: "database migration".to_owned(),
                until: t("2026-12-01T03:00:00Z")
            }
        }
    );
    // A freeze over weeks: the first window after it.
    m.exclusions = vec![Exclusion {
        from: t("2026-12-20T00:00:00Z"),
        until: t("2027-01-04T12:00:00Z"),
        reason: "holidays".to_owned(),
    }];
    assert_eq!(
        closed_opens(&next_opening(&m, t("2026-12-24T01:00:00Z"), d("1h"))),
        Some(t("2027-01-05T00:00:00Z"))
    );
}

#[test]
fn a_week_long_window_every_day_never_closes_within_the_horizon() {
    let m = windows(vec![window(&ALL, "00:00", "7d", "UTC")]);
    assert_eq!(
        next_opening(&m, t("2026-12-01T01:30:00Z"), d("1h")),
        WindowVerdict::Open { closes: None }
    );
}

// ---- waves and rings ----

fn five_25_100() -> Rollout {
    let r = Rollout {
        waves: vec![
            Wave {
                percent: 5,
                after: d("0s"),
            },
            Wave {
                percent: 25,
                after: d("24h"),
            },
            Wave {
                percent: 100,
                after: d("72h"),
            },
        ],
        paused: false,
    };
    r.validate().unwrap();
    r
}

#[test]
fn wave_boundaries_follow_the_cumulative_percents() {
    let r = five_25_100();
    for (position, wave) in [
        (0, 0),
        (499, 0),
        (500, 1),
        (2_499, 1),
        (2_500, 2),
        (9_999, 2),
    ] {
        assert_eq!(
            wave_of(&r, position, Ring::Default),
            wave,
            "position {position}"
        );
    }
    let start = t("2026-12-01T00:00:00Z");
    assert_eq!(r.opens(0, start), Some(start));
    assert_eq!(r.opens(1, start), Some(t("2026-12-02T00:00:00Z")));
    assert_eq!(r.opens(2, start), Some(t("2026-12-04T00:00:00Z")));
    assert_eq!(r.wave_count(), 3);
}

#[test]
fn named_rings_override_the_hash() {
    let r = five_25_100();
    for position in [0, 600, 9_999] {
        assert_eq!(wave_of(&r, position, Ring::Canary), 0);
        assert_eq!(wave_of(&r, position, Ring::Early), 1);
        assert_eq!(wave_of(&r, position, Ring::Late), 2);
    }
    let one = Rollout {
        waves: vec![Wave {
            percent: 100,
            after: d("1h"),
        }],
        paused: false,
    };
    assert_eq!(wave_of(&one, 9_999, Ring::Early), 0);
    assert_eq!(wave_of(&one, 9_999, Ring::Late), 0);
    let none = Rollout::default();
    for ring in [Ring::Canary, Ring::Early, Ring::Default, Ring::Late] {
        assert_eq!(wave_of(&none, 9_999, ring), 0);
    }
    assert_eq!(
        none.opens(0, t("2026-12-01T00:00:00Z")),
        Some(t("2026-12-01T00:00:00Z"))
    );
}

#[test]
fn fleet_position_is_stable_and_per_channel() {
    // Pinned: a change of the hash would move every cluster of every fleet.
    let uid = "8b6c1d2e-3f40-4a5b-9c6d-7e8f9a0b1c2d";
    assert_eq!(fleet_position(uid, "stable"), fleet_position(uid, "stable"));
    assert_eq!(fleet_position(uid, "stable"), PINNED_STABLE);
    assert_eq!(fleet_position(uid, "beta"), PINNED_BETA);
    assert_ne!(fleet_position(uid, "stable"), fleet_position(uid, "beta"));
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert_ne!(fleet_position("ab", "c"), fleet_position("a", "bc"));
}

const PINNED_STABLE: u32 = 9_803;
const PINNED_BETA: u32 = 3_901;

#[test]
fn fleet_positions_spread_evenly() {
    // 20,000 UIDs shaped like Kubernetes UIDs: every tenth of the fleet gets 10 % ± 1.5.
    let n = 20_000;
    let mut deciles = [0u32; 10];
    let mut canaries = 0;
    for i in 0..n {
        let uid = format!("{:08x}-0000-4000-8000-{:012x}", i * 7919, i);
        let p = fleet_position(&uid, "stable");
        assert!(p < POSITIONS);
        deciles[(p / 1_000) as usize] += 1;
        if wave_of(&five_25_100(), p, Ring::Default) == 0 {
            canaries += 1;
        }
    }
    for (i, c) in deciles.iter().enumerate() {
        assert!((1_700..=2_300).contains(c), "decile {i}: {c} of {n}");
    }
    // 5 % canaries: 1,000 of 20,000, within ± 20 %.
    assert!((800..=1_200).contains(&canaries), "{canaries} canaries");
}

#[test]
fn each_bad_rollout_has_its_own_error() {
    let w = |percent, after: &str| Wave {
        percent,
        after: d(after),
    };
    let check = |waves: Vec<Wave>, want: RolloutError| {
        assert_eq!(
            Rollout {
                waves,
                paused: false
            }
            .validate(),
            Err(want)
        );
    };
    check(
        vec![w(0, "0s"), w(100, "1h")],
        RolloutError::WavePercent {
            wave: 0,
            percent: 0,
        },
    );
    check(
        vec![w(5, "0s"), w(101, "1h")],
        RolloutError::WavePercent {
            wave: 1,
            percent: 101,
        },
    );
    check(
        vec![w(25, "0s"), w(25, "1h"), w(100, "2h")],
        RolloutError::WavesNotIncreasing {
            wave: 1,
            percent: 25,
            before: 25,
        },
    );
    check(
        vec![w(50, "0s"), w(25, "1h"), w(100, "2h")],
        RolloutError::WavesNotIncreasing {
            wave: 1,
            percent: 25,
            before: 50,
        },
    );
    check(
        vec![w(5, "2h"), w(100, "1h")],
        RolloutError::WavesNotLater {
            wave: 1,
            after: d("1h"),
            before: d("2h"),
        },
    );
    check(
        vec![w(5, "0s"), w(50, "1h")],
        RolloutError::LastWaveNot100 { percent: 50 },
    );
    check(
        vec![w(5, "0s"), w(100, "91d")],
        RolloutError::WaveTooLate {
            wave: 1,
            after: d("91d"),
        },
    );
    check(
        (1..=11).map(|i| w(i * 9, &format!("{i}h"))).collect(),
        RolloutError::TooManyWaves { count: 11 },
    );
    Rollout::default().validate().unwrap();
    Rollout {
        waves: vec![],
        paused: true,
    }
    .validate()
    .unwrap();
}

// ---- the gate ----

fn input<'a>(rollout: Option<&'a Rollout>, maintenance: Option<&'a Maintenance>) -> GateInput<'a> {
    GateInput {
        now: t("2026-12-01T12:00:00Z"),
        rollout,
        rollout_start: t("2026-12-01T00:00:00Z"),
        position: 9_000,
        ring: Ring::Default,
        maintenance,
        urgency: None,
        needs: d("15m"),
    }
}

#[test]
fn nothing_set_goes() {
    assert_eq!(gate(&input(None, None)), Gate::Go);
    assert_eq!(gate(&input(Some(&Rollout::default()), None)), Gate::Go);
}

#[test]
fn a_paused_rollout_holds_every_ring() {
    let mut r = five_25_100();
    r.paused = true;
    for ring in [Ring::Canary, Ring::Early, Ring::Default, Ring::Late] {
        let g = gate(&GateInput {
            ring,
            ..input(Some(&r), None)
        });
        let Gate::Wait(w) = g else {
            panic!("{ring}: {g:?}")
        };
        assert_eq!(w.kind, WaitKind::Paused);
        assert_eq!(w.until, None);
        assert!(w.to_string().contains("paused"), "{w}");
    }
}

#[test]
fn a_late_wave_waits_and_the_canary_goes() {
    let r = five_25_100();
    assert_eq!(
        gate(&GateInput {
            ring: Ring::Canary,
            ..input(Some(&r), None)
        }),
        Gate::Go
    );
    let Gate::Wait(w) = gate(&input(Some(&r), None)) else {
        panic!()
    };
    assert_eq!(
        w,
        WaitReason {
            kind: WaitKind::Wave {
                wave: 2,
                of: 3,
                percent: 100,
                opens: t("2026-12-04T00:00:00Z")
            },
            until: Some(t("2026-12-04T00:00:00Z")),
        }
    );
    assert_eq!(
        w.to_string(),
        "waits for rollout wave 3 of 3 (100 % of the fleet), which opens at 2026-12-04T00:00:00Z"
    );
    // Once the wave opened: go.
    assert_eq!(
        gate(&GateInput {
            now: t("2026-12-04T00:00:00Z"),
            ..input(Some(&r), None)
        }),
        Gate::Go
    );
}

#[test]
fn a_wave_that_opens_outside_the_windows_waits_for_both() {
    let r = five_25_100();
    // Saturdays 02:00 UTC: the wave opens Friday 2026-12-04, the window Saturday.
    let m = windows(vec![window(&[Weekday::Sat], "02:00", "4h", "UTC")]);
    let Gate::Wait(w) = gate(&input(Some(&r), Some(&m))) else {
        panic!()
    };
    assert_eq!(w.until, Some(t("2026-12-05T02:00:00Z")));
    assert!(w.to_string().ends_with(
        "opens at 2026-12-04T00:00:00Z; the maintenance windows then let it start at 2026-12-05T02:00:00Z"
    ), "{w}");
    // In the wave, outside the window.
    let Gate::Wait(w) = gate(&GateInput {
        ring: Ring::Canary,
        ..input(Some(&r), Some(&m))
    }) else {
        panic!()
    };
    assert_eq!(w.kind, WaitKind::Window(ClosedWhy::Outside));
    assert_eq!(
        w.to_string(),
        "outside the maintenance windows; the next window that fits opens at 2026-12-05T02:00:00Z"
    );
}

#[test]
fn security_updates_pass_the_windows_only_where_allowed_and_never_an_exclusion() {
    let mut m = windows(vec![window(&[Weekday::Sat], "02:00", "4h", "UTC")]);
    fn security(m: &Maintenance) -> GateInput<'_> {
        GateInput {
            urgency: Some(Urgency::Security),
            ..input(None, Some(m))
        }
    }
    assert!(matches!(gate(&security(&m)), Gate::Wait(_)));
    m.allow_security_updates = true;
    assert_eq!(gate(&security(&m)), Gate::Go);
    // Not urgent: still held.
    assert!(matches!(gate(&input(None, Some(&m))), Gate::Wait(_)));
    m.exclusions.push(Exclusion {
        from: t("2026-12-01T00:00:00Z"),
        until: t("2026-12-02T00:00:00Z"),
        reason: "change freeze for the audit".to_owned(),
    });
    let Gate::Wait(w) = gate(&security(&m)) else {
        panic!()
    };
    assert_eq!(
        w.kind,
        WaitKind::Window(ClosedWhy::Excluded {
            reason: "change freeze for the audit".to_owned(),
            until: t("2026-12-02T00:00:00Z")
        })
    );
    assert_eq!(w.until, Some(t("2026-12-02T00:00:00Z")));
    assert_eq!(
        w.to_string(),
        "maintenance exclusion until 2026-12-02T00:00:00Z: change freeze for the audit; the next window that fits opens at 2026-12-02T00:00:00Z"
    );
}

#[test]
fn does_not_fit_says_when_the_window_closes_and_what_it_needs() {
    let m = windows(vec![window(&ALL, "11:00", "70m", "UTC")]);
    let Gate::Wait(w) = gate(&input(None, Some(&m))) else {
        panic!()
    };
    assert_eq!(w.kind.label(), "doesNotFit");
    assert_eq!(
        w.to_string(),
        "the maintenance window closes at 2026-12-01T12:10:00Z, too soon for an upgrade that may take 15m (helm and health timeouts); the next window that fits opens at 2026-12-02T11:00:00Z"
    );
}
