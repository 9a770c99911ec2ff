// Parses the sampler's progress text ("window 2/5 · step 3/8"; the Animate sampler's "clip 2/5") into numbers.
// Pure functions, no ComfyUI import, so they can be tested with plain Node.
// Loaded by ComfyUI as an extension module like every .js file here; it registers nothing.

/** {window, windows, step, steps, fraction, badge} from a progress line, or null without "window k/n" / "clip k/n". */
export function parseProgressText(text) {
  if (typeof text !== "string") return null;
  const win = /(?:window|clip)\s+(\d+)\s*\/\s*(\d+)/i.exec(text);
  if (!win) return null;
  const windowIndex = parseInt(win[1], 10);
  const windows = parseInt(win[2], 10);
  if (!(windows > 0) || windowIndex < 1 || windowIndex > windows) return null;
  const st = /step\s+(\d+)\s*\/\s*(\d+)/i.exec(text);
  let step = null;
  let steps = null;
  let within = 0;
  if (st) {
    step = parseInt(st[1], 10);
    steps = parseInt(st[2], 10);
    if (steps > 0) within = Math.min(Math.max(step / steps, 0), 1);
  }
  const fraction = (windowIndex - 1 + within) / windows;
  const badge = steps ? `${windowIndex}/${windows} · ${step}/${steps}` : `${windowIndex}/${windows}`;
  return { window: windowIndex, windows, step, steps, fraction, badge };
}
