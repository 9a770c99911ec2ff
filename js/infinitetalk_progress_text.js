// Parses the sampler's progress text into numbers for the title badge.
// Pure functions, no ComfyUI import, so they can be tested with plain Node.
// Loaded by ComfyUI as an extension module like every .js file here; it registers nothing.
//
// Lines the sampler sends (nodes/sampler_nodes.py):
//   "window 2/5 · step 3/8"        denoising step 3 of 8 of window 2
//   "window 2/5 · decode 4/21"     the VAE decoding window 2, chunk 4 of 21 (also "encode i/n")
//   "window 2/5 done (160 frames)" window 2 is finished and on disk
//   "resuming at window 3/4 (2 finished)"
// The Animate sampler says "clip k/n", the LongCat sampler "segment k/n", where these say "window k/n".

/** {window, windows, step, steps, stage, chunk, chunks, finished, fraction, badge} from a line, or null without
 * "window k/n" / "clip k/n" / "segment k/n". */
export function parseProgressText(text) {
  if (typeof text !== "string") return null;
  const win = /(?:window|clip|segment)\s+(\d+)\s*\/\s*(\d+)/i.exec(text);
  if (!win) return null;
  const windowIndex = parseInt(win[1], 10);
  const windows = parseInt(win[2], 10);
  if (!(windows > 0) || windowIndex < 1 || windowIndex > windows) return null;
  const result = { window: windowIndex, windows, step: null, steps: null, stage: null, chunk: null, chunks: null,
                   finished: null, fraction: (windowIndex - 1) / windows, badge: `${windowIndex}/${windows}` };
  if (/(?:window|clip|segment)\s+\d+\s*\/\s*\d+\s+done\b/i.test(text)) {
    return { ...result, finished: windowIndex, fraction: windowIndex / windows, badge: `${windowIndex}/${windows} done` };
  }
  const resumed = /\((\d+)\s+finished\)/i.exec(text);
  if (resumed) result.finished = parseInt(resumed[1], 10);
  const st = /step\s+(\d+)\s*\/\s*(\d+)/i.exec(text);
  if (st) {
    result.step = parseInt(st[1], 10);
    result.steps = parseInt(st[2], 10);
    if (result.steps > 0) {
      result.fraction = (windowIndex - 1 + Math.min(Math.max(result.step / result.steps, 0), 1)) / windows;
      result.badge = `${windowIndex}/${windows} · ${result.step}/${result.steps}`;
    }
    return result;
  }
  const vae = /\b(encode|decode)\s+(\d+)\s*\/\s*(\d+)/i.exec(text);
  if (vae) {
    result.stage = vae[1].toLowerCase();
    result.chunk = parseInt(vae[2], 10);
    result.chunks = parseInt(vae[3], 10);
    result.badge = `${windowIndex}/${windows} · ${result.stage} ${result.chunk}/${result.chunks}`;
  }
  return result;
}

/** The badge's text: the progress line's badge, or after a stop the count of finished windows (as the log says). */
export function badgeLabel(parsed, finished, stopped) {
  if (!parsed) return "";
  if (!stopped) return parsed.badge;
  return `${finished ?? 0}/${parsed.windows} done (stopped)`;
}
