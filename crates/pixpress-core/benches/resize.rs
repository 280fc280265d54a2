//! Resize benchmark: a 12 MP photo (4000x3000, made by upscaling a corpus photo once at setup,
//! since the corpus tops out at 8.3 MP) to 800 px wide with Lanczos3, plus the whole
//! decode → plan → resize → encode path on the corpus's largest JPEG.
//!
//! Run: `cargo bench -p pixpress-core --bench resize`

use criterion::{criterion_group, criterion_main, Criterion};
use image::DynamicImage;
use pixpress_core::{
    apply_resize, inspect, optimize_resized, plan_resize, Limits, Request, ResizeSpec, Strategy,
};

fn corpus(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
    std::fs::read(format!("{path}{name}")).expect("corpus file")
}

fn twelve_megapixel_photo() -> DynamicImage {
    let photo = image::load_from_memory(&corpus("photo_wood.jpg")).expect("decode");
    let spec = ResizeSpec {
        strategy: Strategy::Exact {
            width: 4000,
            height: 3000,
        },
        enlarge: true,
    };
    apply_resize(
        &photo,
        &plan_resize(photo.width(), photo.height(), &spec).expect("plan"),
    )
    .expect("upscale")
}

fn resize_benches(c: &mut Criterion) {
    let photo = twelve_megapixel_photo();
    let spec = ResizeSpec {
        strategy: Strategy::Landscape { width: 800 },
        enlarge: false,
    };
    let p = plan_resize(photo.width(), photo.height(), &spec).expect("plan");
    let mut group = c.benchmark_group("resize");
    group.sample_size(20);
    group.bench_function("12MP RGB8 to 800 wide (Lanczos3)", |b| {
        b.iter(|| apply_resize(&photo, &p).expect("resize"));
    });
    let elephants = corpus("photo_elephants_art.jpg");
    let request = Request {
        lossy: true,
        quality: Some(80),
        ..Request::default()
    };
    group.sample_size(10);
    group.bench_function("8.3MP JPEG decode+resize 800 wide+mozjpeg q80", |b| {
        b.iter(|| {
            let probe = inspect(&elephants, &Limits::default()).expect("probe");
            optimize_resized(
                &elephants,
                &probe,
                &request,
                std::slice::from_ref(&spec),
                &Limits::default(),
            )
            .expect("pipeline")
        });
    });
    group.finish();
}

criterion_group!(benches, resize_benches);
criterion_main!(benches);
