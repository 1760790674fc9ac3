//! Snapshot images of the real window's main screens, rendered on the CPU
//! by a small software rasterizer (below) so the pixels do not depend on a
//! GPU or a Mesa version: the same tessellated egui meshes every renderer
//! draws, filled triangle by triangle with egui's own font atlas. The PNGs
//! live in `tests/snapshots/`; `UPDATE_SNAPSHOTS=1 cargo test --test
//! gui_snapshots` rewrites them after an intended change.
#![allow(clippy::disallowed_methods)]

#[path = "support/gui.rs"]
mod gui_support;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use egui::epaint::{ClippedPrimitive, Primitive, Vertex};
use egui::{Color32, TextureId, TexturesDelta};
use egui_kittest::{Harness, TestRenderer};
use serde_json::json;

use gui_support::options;
use softline::gui::{Page, SoftlineApp};
use support::{Phone, TestDir, free_udp_port};

/// Textures by id, as RGBA (premultiplied, gamma space: egui's `Color32`).
#[derive(Default)]
struct CpuRenderer {
    textures: HashMap<TextureId, (usize, usize, Vec<Color32>)>,
}

impl TestRenderer for CpuRenderer {
    fn handle_delta(&mut self, delta: &mut TexturesDelta) {
        for (id, deltas) in delta.set.drain() {
            for d in deltas {
                let egui::ImageData::Color(img) = &d.image;
                let [w, h] = img.size;
                match d.pos {
                    None => {
                        self.textures.insert(id, (w, h, img.pixels.clone()));
                    }
                    Some([x0, y0]) => {
                        if let Some((tw, th, px)) = self.textures.get_mut(&id) {
                            for y in 0..h {
                                for x in 0..w {
                                    let (tx, ty) = (x0 + x, y0 + y);
                                    if tx < *tw && ty < *th {
                                        px[ty * *tw + tx] = img.pixels[y * w + x];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for id in delta.free.drain() {
            self.textures.remove(&id);
        }
    }

    fn render(
        &mut self,
        ctx: &egui::Context,
        output: &egui::FullOutput,
    ) -> Result<image::RgbaImage, String> {
        let ppp = ctx.pixels_per_point();
        let size = ctx.content_rect().size() * ppp;
        let (w, h) = (size.x.round() as usize, size.y.round() as usize);
        let mut target = vec![[0f32; 4]; w * h];
        let prims: Vec<ClippedPrimitive> = ctx.tessellate(output.shapes.clone(), ppp);
        for p in &prims {
            let Primitive::Mesh(mesh) = &p.primitive else {
                continue;
            };
            let Some(tex) = self.textures.get(&mesh.texture_id) else {
                continue;
            };
            let clip = [
                (p.clip_rect.min.x * ppp).max(0.0),
                (p.clip_rect.min.y * ppp).max(0.0),
                (p.clip_rect.max.x * ppp).min(w as f32),
                (p.clip_rect.max.y * ppp).min(h as f32),
            ];
            for tri in mesh.indices.chunks_exact(3) {
                let v = [
                    &mesh.vertices[tri[0] as usize],
                    &mesh.vertices[tri[1] as usize],
                    &mesh.vertices[tri[2] as usize],
                ];
                fill_triangle(&mut target, w, clip, ppp, v, tex);
            }
        }
        let mut img = image::RgbaImage::new(w as u32, h as u32);
        for (i, px) in target.iter().enumerate() {
            let a = px[3].clamp(0.0, 1.0);
            // Un-premultiply for the PNG.
            let c = |v: f32| {
                if a > 0.0 {
                    ((v / a).clamp(0.0, 1.0) * 255.0).round() as u8
                } else {
                    0
                }
            };
            img.put_pixel(
                (i % w) as u32,
                (i / w) as u32,
                image::Rgba([c(px[0]), c(px[1]), c(px[2]), (a * 255.0).round() as u8]),
            );
        }
        Ok(img)
    }
}

/// Fill one triangle (vertex positions in points) into the premultiplied
/// RGBA float target, sampling the texture at the nearest texel.
fn fill_triangle(
    target: &mut [[f32; 4]],
    w: usize,
    clip: [f32; 4],
    ppp: f32,
    v: [&Vertex; 3],
    (tw, th, tex): &(usize, usize, Vec<Color32>),
) {
    let p: Vec<(f32, f32)> = v.iter().map(|v| (v.pos.x * ppp, v.pos.y * ppp)).collect();
    let area = (p[1].0 - p[0].0) * (p[2].1 - p[0].1) - (p[2].0 - p[0].0) * (p[1].1 - p[0].1);
    if area.abs() < 1e-6 {
        return;
    }
    let min_x = p
        .iter()
        .map(|q| q.0)
        .fold(f32::MAX, f32::min)
        .max(clip[0])
        .floor() as i64;
    let max_x = p
        .iter()
        .map(|q| q.0)
        .fold(f32::MIN, f32::max)
        .min(clip[2])
        .ceil() as i64;
    let min_y = p
        .iter()
        .map(|q| q.1)
        .fold(f32::MAX, f32::min)
        .max(clip[1])
        .floor() as i64;
    let max_y = p
        .iter()
        .map(|q| q.1)
        .fold(f32::MIN, f32::max)
        .min(clip[3])
        .ceil() as i64;
    let rgba = |c: Color32| {
        [
            f32::from(c.r()) / 255.0,
            f32::from(c.g()) / 255.0,
            f32::from(c.b()) / 255.0,
            f32::from(c.a()) / 255.0,
        ]
    };
    let cols = [rgba(v[0].color), rgba(v[1].color), rgba(v[2].color)];
    for y in min_y.max(0)..max_y {
        for x in min_x.max(0)..max_x {
            // Sample at the pixel centre.
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            if px < clip[0] || px >= clip[2] || py < clip[1] || py >= clip[3] {
                continue;
            }
            let w0 = ((p[1].0 - px) * (p[2].1 - py) - (p[2].0 - px) * (p[1].1 - py)) / area;
            let w1 = ((p[2].0 - px) * (p[0].1 - py) - (p[0].0 - px) * (p[2].1 - py)) / area;
            let w2 = 1.0 - w0 - w1;
            if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                continue;
            }
            let u = w0 * v[0].uv.x + w1 * v[1].uv.x + w2 * v[2].uv.x;
            let t = w0 * v[0].uv.y + w1 * v[1].uv.y + w2 * v[2].uv.y;
            let tx = ((u * *tw as f32) as usize).min(tw - 1);
            let ty = ((t * *th as f32) as usize).min(th - 1);
            let texel = rgba(tex[ty * tw + tx]);
            let mut src = [0f32; 4];
            for (k, s) in src.iter_mut().enumerate() {
                let c = w0 * cols[0][k] + w1 * cols[1][k] + w2 * cols[2][k];
                *s = c * texel[k];
            }
            let dst = &mut target[y as usize * w + x as usize];
            for k in 0..4 {
                dst[k] = src[k] + dst[k] * (1.0 - src[3]);
            }
        }
    }
}

fn base_config(port: u16, dir: &TestDir) -> String {
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n\n[history]\nfile = \"{}/history.jsonl\"\n",
        dir.path.display()
    )
}

fn harness(dir: &TestDir, config: &str) -> Harness<'static, SoftlineApp> {
    harness_at(dir, dir.file("softline.toml"), config)
}

fn harness_at(
    dir: &TestDir,
    path: std::path::PathBuf,
    config: &str,
) -> Harness<'static, SoftlineApp> {
    std::fs::write(&path, config).unwrap();
    let mut h = gui_support::harness(options(dir, path), |b| {
        b.with_size([720.0, 420.0])
            .with_theme(egui::Theme::Dark)
            // A blinking text cursor would make the pictures depend on timing.
            .with_context_setup(|ctx| ctx.all_styles_mut(|s| s.visuals.text_cursor.blink = false))
            .renderer(CpuRenderer::default())
    });
    settle(&mut h, |h| h.state().vm.settings.is_some());
    h
}

fn settle(
    h: &mut Harness<'static, SoftlineApp>,
    pred: impl Fn(&Harness<'static, SoftlineApp>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(h) {
        assert!(Instant::now() < deadline, "timed out: {:#?}", h.state().vm);
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
}

#[test]
fn first_run_account_form() {
    let dir = TestDir::new("snap-first");
    // The form shows where it saves: a fixed path keeps the picture stable.
    let fixed = std::env::temp_dir().join("softline-snapshot-first-run");
    let _ = std::fs::remove_dir_all(&fixed);
    std::fs::create_dir_all(&fixed).unwrap();
    let mut h = harness_at(
        &dir,
        fixed.join("softline.toml"),
        &base_config(free_udp_port(), &dir),
    );
    assert_eq!(h.state().page, Page::Account);
    // The listening port differs per run: keep it out of the picture.
    h.state_mut().vm.listen = None;
    h.run_steps(2);
    h.snapshot("first_run_account_form");
    h.state_mut().shutdown();
    let _ = std::fs::remove_dir_all(&fixed);
}

#[test]
fn incoming_call_alert() {
    let dir = TestDir::new("snap-incoming");
    let pa = free_udp_port();
    let mut h = harness(&dir, &base_config(pa, &dir));
    let peer_dir = TestDir::new("snap-peer");
    let b = Phone::start(&base_config(free_udp_port(), &peer_dir));
    b.cmd(json!({"cmd": "call", "target": format!("sip:agent@127.0.0.1:{pa}")}));
    settle(&mut h, |h| h.state().vm.ringing_in().is_some());
    h.snapshot("incoming_call_alert");
    b.cmd(json!({"cmd": "hangup"}));
    h.state_mut().shutdown();
}

#[test]
fn help_page_lists_the_shortcuts() {
    let dir = TestDir::new("snap-help");
    let mut h = harness(&dir, &base_config(free_udp_port(), &dir));
    h.state_mut().page = Page::Help;
    h.run_steps(2);
    h.snapshot("help_page");
    h.state_mut().shutdown();
}
