//! Two-stream attention (XLNet): a content stream, where a token sees itself and what precedes
//! it in the factorization order, and a query stream, where a prediction sees only what
//! precedes it and knows its position but never its own token. Both streams run through the
//! same layers with the same weights.
//!
//! The streams travel as one sequence, content first: every position queries, only the content
//! positions are keys ([`EncoderLayer::forward_two_stream`](super::EncoderLayer)), so the
//! query stream reads the content stream of the layer below, as in XLNet, and nothing reads
//! the query stream. Who sees whom is the [`AttentionMask`] (normally
//! [`AttentionMask::by_rank`]).
//!
//! Positions are given explicitly to each stream and reach every layer: added vectors, or
//! rotary embeddings (each row rotated by its own position, so a query knows where its target
//! is and scores depend on distances, as XLNet's relative attention intends). A query's input
//! is the `[MASK]` token embedding at its target's position (XLNet adds a learned `mask_emb`
//! and lets the relative attention say where it is; MPNet does as here).

use burn::prelude::*;

use super::encoder::{EncoderBackbone, TransformerEncoder};
use super::mask::AttentionMask;

/// One stream's input: token ids at explicit positions.
#[derive(Debug, Clone)]
pub struct StreamInput {
    /// `[batch, len]` token ids.
    pub ids: Tensor<2, Int>,
    /// `[batch, len]` positions, each below the backbone's `max_positions`.
    pub positions: Tensor<2, Int>,
    /// `[batch, len]` segment ids, if the backbone has segment embeddings.
    pub segments: Option<Tensor<2, Int>>,
}

/// A backbone that runs a content and a query stream through its layers with shared weights.
pub trait TwoStreamBackbone: EncoderBackbone {
    /// Hidden states `(content, query)` of the two streams. `mask` is
    /// `[batch, 1, content + query, content]`: its rows are the content positions then the
    /// query positions, its keys the content positions.
    fn encode_two_stream(
        &self,
        content: StreamInput,
        query: StreamInput,
        mask: &AttentionMask,
    ) -> (Tensor<3>, Tensor<3>);
}

impl TwoStreamBackbone for TransformerEncoder {
    fn encode_two_stream(
        &self,
        content: StreamInput,
        query: StreamInput,
        mask: &AttentionMask,
    ) -> (Tensor<3>, Tensor<3>) {
        let keys = content.ids.dims()[1];
        let segments = match (content.segments, query.segments) {
            (Some(c), Some(q)) => Some(Tensor::cat(vec![c, q], 1)),
            _ => None,
        };
        let positions = Tensor::cat(vec![content.positions, query.positions], 1);
        let x = self.embeddings.forward_at(
            Tensor::cat(vec![content.ids, query.ids], 1),
            positions.clone(),
            segments,
        );
        let h = self.stack(x, keys, Some(mask), &positions);
        let [batch, len, width] = h.dims();
        (
            h.clone().slice([0..batch, 0..keys, 0..width]),
            h.slice([0..batch, keys..len, 0..width]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BlockConfig, PositionEncoding, TransformerEncoderConfig};
    use crate::test_support::max_abs_diff;

    fn ints(rows: &[&[i64]], device: &Device) -> Tensor<2, Int> {
        let width = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device)
    }

    /// Six content tokens at positions 0..6: context 0, 1, 5; targets 3, 2, 4 predicted in
    /// that order. Ranks are doubled so that a query (2r − 1) falls between its predecessor's
    /// content (2r − 2) and its own (2r).
    fn run(
        model: &TransformerEncoder,
        tokens: [i64; 6],
        device: &Device,
    ) -> (Tensor<3>, Tensor<3>) {
        run_from(model, tokens, 0, device)
    }

    /// [`run`] with every position moved `shift` places on.
    fn run_from(
        model: &TransformerEncoder,
        tokens: [i64; 6],
        shift: i64,
        device: &Device,
    ) -> (Tensor<3>, Tensor<3>) {
        let content = StreamInput {
            ids: ints(&[&tokens], device),
            positions: ints(&[&[0, 1, 2, 3, 4, 5]], device).add_scalar(shift),
            segments: None,
        };
        let query = StreamInput {
            ids: ints(&[&[1, 1, 1]], device),
            positions: ints(&[&[3, 2, 4]], device).add_scalar(shift),
            segments: None,
        };
        // Content ranks by position: 3 → 0, 2 → 2, 4 → 4; context -2.
        let keys = ints(&[&[-2, -2, 2, 0, 4, -2]], device);
        let rows = ints(&[&[-1, -1, 2, 0, 4, -1, -1, 1, 3]], device);
        model.encode_two_stream(content, query, &AttentionMask::by_rank(rows, keys, None))
    }

    fn changed(a: &Tensor<3>, b: &Tensor<3>, row: usize) -> f32 {
        let w = a.dims()[2];
        let row = |t: &Tensor<3>| t.clone().slice([0..1, row..row + 1, 0..w]);
        max_abs_diff(row(a), row(b))
    }

    /// Post-norm, pre-norm, and positions inside attention: rotary, T5's relative bias.
    fn blocks() -> [BlockConfig; 4] {
        let block = BlockConfig::new(4, 64);
        let rotary = PositionEncoding::Rotary { theta: 100.0 };
        [
            block.clone(),
            block.clone().with_norm_first(true),
            block.clone().with_norm_first(true).with_positions(rotary),
            block.t5_layout(),
        ]
    }

    fn model(block: BlockConfig, device: &Device) -> TransformerEncoder {
        TransformerEncoderConfig::new(50, 32, 2, block)
            .with_dropout(0.0)
            .init(device)
            .unwrap()
    }

    #[test]
    fn a_query_sees_what_precedes_it_in_the_order_and_never_its_own_token() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        for block in blocks() {
            let model = model(block, &device);
            let base = [10, 11, 12, 13, 14, 15];
            let (h, g) = run(&model, base, &device);
            // Query 1 predicts position 2, after position 3 (query 0) and before position 4.
            let perturb = |pos: usize| {
                let mut t = base;
                t[pos] = 40;
                run(&model, t, &device)
            };
            let (h_own, g_own) = perturb(2);
            assert!(changed(&g, &g_own, 1) < 1e-5, "query saw its own token");
            assert!(
                changed(&h, &h_own, 2) > 1e-3,
                "content stream blind to its own token"
            );
            let (_, g_later) = perturb(4);
            assert!(changed(&g, &g_later, 1) < 1e-5, "query saw a later target");
            let (_, g_earlier) = perturb(3);
            assert!(
                changed(&g, &g_earlier, 1) > 1e-3,
                "query blind to an earlier target"
            );
            let (h_ctx, g_ctx) = perturb(0);
            assert!(changed(&g, &g_ctx, 0) > 1e-3, "query blind to the context");
            // Context never sees a target.
            let (h_t, _) = perturb(3);
            assert!(changed(&h, &h_t, 0) < 1e-5, "context saw a target");
            assert!(changed(&h, &h_ctx, 3) > 1e-3);
            // The last query sees everything but itself.
            assert!(changed(&g, &g_own, 2) > 1e-3);
            assert!(changed(&g, &perturb(4).1, 2) < 1e-5);
        }
    }

    #[test]
    fn relative_positions_reach_both_streams_and_only_differences_count() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let tokens = [10, 11, 12, 13, 14, 15];
        for block in blocks() {
            let relative = !block.positions.added();
            let model = crate::test_support::scaled(model(block, &device), 3.0);
            let (h, g) = run(&model, tokens, &device);
            let (h_moved, g_moved) = run_from(&model, tokens, 7, &device);
            let moved = max_abs_diff(h.clone(), h_moved).max(max_abs_diff(g.clone(), g_moved));
            match relative {
                // Rotary and T5's bias read only differences of positions, in both streams.
                true => assert!(moved < 1e-4, "moved by {moved}"),
                false => assert!(moved > 1e-2, "moved by {moved}"),
            }
            // And they do read them: the query stream's targets swapped, its states change.
            let content = StreamInput {
                ids: ints(&[&tokens], &device),
                positions: ints(&[&[0, 1, 2, 3, 4, 5]], &device),
                segments: None,
            };
            let query = StreamInput {
                ids: ints(&[&[1, 1, 1]], &device),
                positions: ints(&[&[4, 2, 3]], &device),
                segments: None,
            };
            let keys = ints(&[&[-2, -2, 2, 4, 0, -2]], &device);
            let rows = ints(&[&[-1, -1, 2, 4, 0, -1, -1, 1, 3]], &device);
            let mask = AttentionMask::by_rank(rows, keys, None);
            let (_, swapped) = model.encode_two_stream(content, query, &mask);
            let reached = changed(&g, &swapped, 0);
            assert!(
                reached > 1e-3,
                "{relative}: positions did not reach the queries: {reached}"
            );
        }
    }

    #[test]
    fn the_query_stream_changes_nothing_in_the_content_stream() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let model = TransformerEncoderConfig::new(50, 32, 2, BlockConfig::new(4, 64))
            .with_dropout(0.0)
            .init(&device)
            .unwrap();
        let tokens = ints(&[&[10, 11, 12]], &device);
        let positions = ints(&[&[0, 1, 2]], &device);
        let content = StreamInput {
            ids: tokens.clone(),
            positions: positions.clone(),
            segments: None,
        };
        let query = |id: i64| StreamInput {
            ids: ints(&[&[id]], &device),
            positions: ints(&[&[1]], &device),
            segments: None,
        };
        let mask = || {
            AttentionMask::by_rank(
                ints(&[&[5, 5, 5, 5]], &device),
                ints(&[&[0, 0, 0]], &device),
                None,
            )
        };
        let (h1, _) = model.encode_two_stream(content.clone(), query(1), &mask());
        let (h2, _) = model.encode_two_stream(content, query(30), &mask());
        assert!(max_abs_diff(h1.clone(), h2) < 1e-6);
        // With every key visible the content stream is the plain encoder.
        let plain = model.encode(tokens, None, None);
        assert!(max_abs_diff(h1, plain) < 1e-4);
    }
}
