//! What the examples' plots share.

use plotters::coord::CoordTranslate;
use plotters::prelude::*;

/// Draws `chart`'s legend of its labelled series: a black border on white.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
}
