//! The one scenario loop that `stream-gate sim`, `demo` and `verify` share: for each scenario, the
//! caller's [`Course`] builds its plan (or skips it, or stops the run), the plan is played over
//! real sockets as the caller's account, and the caller judges what was observed.

use super::attacks::{self, CallSetup, Plan, Scenario, ScenarioError};
use super::client::{EchoWait, SimError};
use super::identity::Identity;
use super::play::{play, Observed};

/// What a course does with one scenario.
// One per scenario, moved straight into the loop's match: boxing the plan would save nothing.
#[allow(clippy::large_enum_variant)]
pub enum Turn<'a, E> {
    /// Play this plan.
    Play(Plan<'a>),
    /// Do not play it, for this reason (the course is told through [`Course::skipped`]).
    Skip(String),
    /// Stop the run with this error.
    Stop(E),
}

/// Everything that differs between the runs of `sim`, `demo` and `verify`.
// The run is awaited on its caller's task, never spawned, so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Course {
    /// Why a run stops.
    type Error;

    /// The plan of `scenario` (or why it is skipped, or why the run stops).
    fn turn(&self, scenario: Scenario) -> Turn<'_, Self::Error>;

    /// `scenario` was skipped for `why`.
    fn skipped(&mut self, scenario: Scenario, why: String) {
        let _ = (scenario, why);
    }

    /// What playing `scenario` observed, or why its sockets could not be played.
    async fn observed(
        &mut self,
        scenario: Scenario,
        observed: Result<Observed, SimError>,
    ) -> Result<(), Self::Error>;
}

/// Plays `scenarios` in order as `me`, each as `course` says.
pub async fn run_course<C: Course>(
    course: &mut C,
    scenarios: impl IntoIterator<Item = Scenario>,
    me: &Identity,
) -> Result<(), C::Error> {
    for scenario in scenarios {
        // The plan borrows the course: it is played (or set aside) before the course is told.
        let played = match course.turn(scenario) {
            Turn::Play(plan) => Ok(play(plan, me).await),
            Turn::Skip(why) => Err(why),
            Turn::Stop(e) => return Err(e),
        };
        match played {
            Ok(observed) => course.observed(scenario, observed).await?,
            Err(why) => course.skipped(scenario, why),
        }
    }
    Ok(())
}

/// The plan of `scenario` on `setup`: the legitimate call or session (waiting for the
/// application's answer to every frame or turn when `wait_for_echo`) or the attack.
pub fn plan_of<'a>(
    scenario: Scenario,
    setup: &CallSetup<'a>,
    wait_for_echo: bool,
) -> Result<Plan<'a>, ScenarioError> {
    match scenario {
        Scenario::Legit => {
            let (handshake, mut script) = attacks::legit(setup);
            if wait_for_echo {
                script.echo = Some(EchoWait::default());
            }
            Ok(Plan::Socket(handshake, script))
        }
        Scenario::RelayLegit => {
            let (handshake, mut script) = attacks::relay_legit(setup)?;
            if wait_for_echo {
                script.echo = Some(EchoWait::default());
            }
            Ok(Plan::Socket(handshake, script))
        }
        Scenario::Attack(a) => attacks::attack(a, setup),
    }
}
