//! Weekly time windows such as `Mon-Fri 09:00-18:00 Europe/Berlin`.
//!
//! A window is wall-clock time in an IANA zone, so it follows daylight saving
//! changes: "09:00" means nine o'clock local time on both sides of a DST
//! switch. A window whose end is before its start crosses midnight and
//! belongs to the day it starts on (`Fri 22:00-02:00` covers Saturday 01:00).

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_PER_DAY: u16 = 24 * 60;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    /// Indexed from Monday = 0.
    days: [bool; 7],
    start: u16,
    end: u16,
    zone: Tz,
}

impl Window {
    /// Parses `[DAYS] HH:MM-HH:MM ZONE`. DAYS is a comma list of days or
    /// day ranges (`Mon-Fri`, `Sat,Sun`, `Fri-Mon`); without it, every day.
    pub(crate) fn parse(text: &str) -> Result<Window, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days, times, zone) = match parts.as_slice() {
            [days, times, zone] => (parse_days(days)?, *times, *zone),
            [times, zone] => ([true; 7], *times, *zone),
            _ => {
                return Err(format!(
                    "`{text}`: expected `[DAYS] HH:MM-HH:MM ZONE`, e.g. `Mon-Fri 09:00-18:00 Europe/Berlin`"
                ));
            }
        };
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| format!("`{times}`: expected a time range HH:MM-HH:MM"))?;
        let start = parse_clock(start)?;
        let end = parse_clock(end)?;
        if start == end {
            return Err(format!("`{times}`: the window is empty (start equals end)"));
        }
        if start == MINUTES_PER_DAY {
            return Err(format!("`{times}`: a window cannot start at 24:00"));
        }
        let zone: Tz = zone
            .parse()
            .map_err(|_| format!("`{zone}`: not an IANA time zone (e.g. Europe/Berlin, UTC)"))?;
        Ok(Window {
            days,
            start,
            end,
            zone,
        })
    }

    pub(crate) fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.zone);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let day = local.weekday().num_days_from_monday() as usize;
        let yesterday = (day + 6) % 7;
        if self.start < self.end {
            self.days[day] && minute >= self.start && minute < self.end
        } else {
            (self.days[day] && minute >= self.start) || (self.days[yesterday] && minute < self.end)
        }
    }
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in text.split(',') {
        match item.split_once('-') {
            Some((from, to)) => {
                let from = day_index(from)?;
                let to = day_index(to)?;
                let mut d = from;
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day_index(item)?] = true,
        }
    }
    Ok(days)
}

fn day_index(name: &str) -> Result<usize, String> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = name.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .zip(FULL)
        .position(|(short, full)| lower == *short || lower == full)
        .ok_or_else(|| format!("`{name}`: not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_clock(text: &str) -> Result<u16, String> {
    let bad = || format!("`{text}`: expected a time HH:MM (00:00 to 24:00)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::Window;
    use chrono::{DateTime, Utc};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn window_table() {
        let office = Window::parse("Mon-Fri 09:00-18:00 Europe/Berlin").unwrap();
        let night = Window::parse("Fri 22:00-02:00 UTC").unwrap();
        let weekend = Window::parse("Sat,Sun 00:00-24:00 America/New_York").unwrap();
        let cases = [
            // 2025-01-06 is a Monday; Berlin is UTC+1 in winter.
            (&office, "2025-01-06T08:00:00Z", true),
            (&office, "2025-01-06T07:59:00Z", false),
            (&office, "2025-01-06T17:00:00Z", false),
            (&office, "2025-01-06T16:59:00Z", true),
            // Summer: UTC+2, so 07:00Z is already 09:00 in Berlin.
            (&office, "2025-07-07T07:00:00Z", true),
            (&office, "2025-07-07T06:59:00Z", false),
            // Saturday in Berlin.
            (&office, "2025-01-11T10:00:00Z", false),
            // Friday 23:30 UTC is already Saturday 00:30 in Berlin.
            (&office, "2025-01-10T23:30:00Z", false),
            // Crossing midnight belongs to the start day.
            (&night, "2025-01-10T23:00:00Z", true),
            (&night, "2025-01-11T01:59:00Z", true),
            (&night, "2025-01-11T02:00:00Z", false),
            (&night, "2025-01-11T23:00:00Z", false),
            (&night, "2025-01-10T01:00:00Z", false),
            // Saturday 03:00 UTC is still Friday 22:00 in New York.
            (&weekend, "2025-01-11T03:00:00Z", false),
            (&weekend, "2025-01-11T05:00:00Z", true),
            (&weekend, "2025-01-13T04:59:00Z", true),
            (&weekend, "2025-01-13T05:00:00Z", false),
        ];
        for (window, now, want) in cases {
            assert_eq!(window.contains(at(now)), want, "{window:?} at {now}");
        }
    }

    #[test]
    fn windows_follow_dst_switch() {
        // Europe/Berlin switched to summer time on 2025-03-30 at 01:00 UTC.
        let morning = Window::parse("09:00-10:00 Europe/Berlin").unwrap();
        assert!(morning.contains(at("2025-03-29T08:30:00Z")));
        assert!(!morning.contains(at("2025-03-30T08:30:00Z")));
        assert!(morning.contains(at("2025-03-30T07:30:00Z")));
    }

    #[test]
    fn bad_windows_are_rejected() {
        for bad in [
            "Mon-Fri 09:00-18:00",
            "Mon-Fri 09:00-18:00 Mars/Base",
            "Funday 09:00-18:00 UTC",
            "Mon 9-18 UTC",
            "Mon 09:00-09:00 UTC",
            "Mon 09:00-25:00 UTC",
            "Mon 09:60-10:00 UTC",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
