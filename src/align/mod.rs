//! Learning from preferences after SFT, InstructGPT's recipe: PPO against a reward model with
//! a KL penalty to the SFT policy ([`ppo`](mod@ppo)), responses scored token by token
//! ([`responses`]), one interface for what rewards a response ([`Scorer`]), a programmatic judge of style that stands in for people in the bundled
//! demo ([`style`]), and the judging of a policy by reward and KL ([`evaluate`](mod@evaluate)). The reward
//! model and DPO are objectives ([`crate::objectives::reward`], [`crate::objectives::dpo`])
//! trained through the one training loop; PPO is another loop (rollouts, then updates) on
//! the same spine, [`crate::train::Spine`]: optimizer, schedule, checkpoints and metrics.

pub mod evaluate;
pub mod ppo;
pub mod ppo_math;
pub mod responses;
pub mod reward_model;
pub mod scorer;
pub mod style;

pub use evaluate::{JudgedSample, PolicyScore, evaluate};
pub use ppo::{PolicyValue, PpoConfig, PpoOptions, PpoReport, load_policy, ppo};
pub use responses::{ResponseBatch, response_kl, response_logprobs};
pub use reward_model::RewardModel;
pub use scorer::Scorer;
pub use style::StyleScorer;
