//! Which sound device to use, as the admin ranked them: the first device
//! of the priority list that is present wins. When the device in use
//! disappears mid-call (a headset unplugged), the default policy is to
//! **mute and alert** rather than silently fall back to the laptop's
//! microphone and speakers (which may be in an open-plan office); when a
//! ranked device returns, the call moves back to it. Pure logic: the
//! runtime polls the device list and applies the decisions.

/// What to do when no ranked device is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLost {
    /// Mute (silence in and out) and alert; move back when a ranked device returns.
    Mute,
    /// Use the system default device.
    Fallback,
}

impl OnLost {
    pub fn parse(s: &str) -> Option<OnLost> {
        match s {
            "mute" => Some(OnLost::Mute),
            "fallback" => Some(OnLost::Fallback),
            _ => None,
        }
    }
}

/// The decision for one direction (input or output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Open this device (its full name as listed).
    Device(String),
    /// The system default device.
    Default,
    /// Nothing ranked is present and the policy says mute.
    Muted,
}

/// The admin's ranking for one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePolicy {
    /// Name fragments, best first (case-insensitive substring match).
    pub priority: Vec<String>,
    pub on_lost: OnLost,
}

impl DevicePolicy {
    /// The device to use among `present` (names as listed).
    pub fn choose(&self, present: &[String]) -> Choice {
        if self.priority.is_empty() {
            return Choice::Default;
        }
        for wanted in &self.priority {
            let w = wanted.to_lowercase();
            if let Some(found) = present.iter().find(|p| p.to_lowercase().contains(&w)) {
                return Choice::Device(found.clone());
            }
        }
        match self.on_lost {
            OnLost::Mute => Choice::Muted,
            OnLost::Fallback => Choice::Default,
        }
    }
}

/// Tracks the choice over time and says when it changes.
#[derive(Debug, Clone)]
pub struct DeviceWatch {
    policy: DevicePolicy,
    current: Option<Choice>,
}

/// A change the faces should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub from: Option<Choice>,
    pub to: Choice,
}

impl DeviceWatch {
    pub fn new(policy: DevicePolicy) -> DeviceWatch {
        DeviceWatch {
            policy,
            current: None,
        }
    }

    /// Feed the devices present now; returns the change, if any.
    pub fn update(&mut self, present: &[String]) -> Option<Change> {
        let to = self.policy.choose(present);
        if self.current.as_ref() == Some(&to) {
            return None;
        }
        let from = self.current.replace(to.clone());
        Some(Change { from, to })
    }

    pub fn current(&self) -> Option<&Choice> {
        self.current.as_ref()
    }
}

/// A named sound device that failed mid-call, in a direction no admin
/// ranking decides (`allowed`): the call moves to the system default,
/// as a missing device does when a call starts. Returns the new (input,
/// output) and what to tell the agent; `None` when nothing moves (no
/// failure, a ranking decides, or the failed endpoint already is the
/// default, a file or `null`).
pub fn fallback_after_loss(
    (input, output): (&crate::audio::AudioSpec, &crate::audio::AudioSpec),
    allowed: (bool, bool),
    failed: (Option<&str>, Option<&str>),
) -> Option<(crate::audio::AudioSpec, crate::audio::AudioSpec, String)> {
    use crate::audio::AudioSpec;
    let mut ends = (input.clone(), output.clone());
    let mut said = Vec::new();
    for (spec, ok, why, what) in [
        (&mut ends.0, allowed.0, failed.0, "microphone"),
        (&mut ends.1, allowed.1, failed.1, "speaker"),
    ] {
        if let (AudioSpec::Device(name), true, Some(why)) = (&*spec, ok, why) {
            said.push(format!(
                "{what} {name} failed ({why}): using the default device"
            ));
            *spec = AudioSpec::Default;
        }
    }
    (!said.is_empty()).then(|| (ends.0, ends.1, said.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn policy(on_lost: OnLost) -> DevicePolicy {
        DevicePolicy {
            priority: names(&["Jabra", "Plantronics"]),
            on_lost,
        }
    }

    #[test]
    fn the_best_present_device_wins() {
        let p = policy(OnLost::Mute);
        let laptop = "Built-in Audio Analog Stereo";
        assert_eq!(
            p.choose(&names(&[
                laptop,
                "Plantronics Blackwire 3220",
                "Jabra Evolve 40"
            ])),
            Choice::Device("Jabra Evolve 40".into())
        );
        assert_eq!(
            p.choose(&names(&[laptop, "PLANTRONICS Blackwire"])),
            Choice::Device("PLANTRONICS Blackwire".into())
        );
        assert_eq!(p.choose(&names(&[laptop])), Choice::Muted);
        assert_eq!(
            policy(OnLost::Fallback).choose(&names(&[laptop])),
            Choice::Default
        );
        let none = DevicePolicy {
            priority: vec![],
            on_lost: OnLost::Mute,
        };
        assert_eq!(none.choose(&names(&[laptop])), Choice::Default);
    }

    #[test]
    fn headset_unplugged_mutes_and_plugged_back_returns() {
        let mut w = DeviceWatch::new(policy(OnLost::Mute));
        let laptop = "Built-in Audio";
        let headset = "Jabra Evolve 40";
        assert_eq!(
            w.update(&names(&[laptop, headset])).map(|c| c.to),
            Some(Choice::Device(headset.into()))
        );
        assert_eq!(
            w.update(&names(&[laptop, headset])),
            None,
            "no change, no event"
        );
        let lost = w.update(&names(&[laptop])).unwrap();
        assert_eq!(
            (lost.from, lost.to),
            (Some(Choice::Device(headset.into())), Choice::Muted)
        );
        let back = w.update(&names(&[headset, laptop])).unwrap();
        assert_eq!(back.to, Choice::Device(headset.into()));
    }

    #[test]
    fn a_named_device_lost_mid_call_moves_to_the_default_unless_ranked() {
        use crate::audio::AudioSpec;
        let headset = AudioSpec::Device("USB Headset".into());
        let file = AudioSpec::File {
            path: "x.wav".into(),
            looped: false,
        };
        // The speaker failed: it moves; the microphone stays.
        let (i, o, said) = fallback_after_loss(
            (&headset, &headset),
            (true, true),
            (None, Some("device unplugged")),
        )
        .unwrap();
        assert_eq!((i, o), (headset.clone(), AudioSpec::Default));
        assert_eq!(
            said,
            "speaker USB Headset failed (device unplugged): using the default device"
        );
        // Both failed.
        let (i, o, _) =
            fallback_after_loss((&headset, &headset), (true, true), (Some("x"), Some("y")))
                .unwrap();
        assert_eq!((i, o), (AudioSpec::Default, AudioSpec::Default));
        // A ranking decides that direction (mute or fall back, its policy).
        assert_eq!(
            fallback_after_loss((&headset, &headset), (true, false), (None, Some("y"))),
            None
        );
        // Already the default, or a file: nothing to move to.
        assert_eq!(
            fallback_after_loss(
                (&AudioSpec::Default, &file),
                (true, true),
                (Some("x"), Some("y"))
            ),
            None
        );
        // No failure.
        assert_eq!(
            fallback_after_loss((&headset, &headset), (true, true), (None, None)),
            None
        );
    }
}
