// Sampler progress on the node: "window k/n · step i/m", "window k/n · decode i/m", "window k/n done".
//
// The sampler sends its progress as ComfyUI "progress_text" messages (PromptServer.send_progress_text).
// ComfyUI's front end (1.2x) already prints that text in a text box inside the node. This extension adds
// what the text box does not give: a compact badge and a thin bar in the node's title (readable when
// zoomed out), a reset when a new run starts, and a mark when a run stops that counts the windows
// finished on disk ("2/3 done (stopped)"), as the log does. On front ends without the native text box,
// the badge is what shows the progress. Only "window k/n" (or "clip k/n") lines make a badge.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { badgeLabel, parseProgressText } from "./infinitetalk_progress_text.js";

const PREFIX = "InfiniteTalk";

function findNode(nodeId) {
  const graph = app.graph;
  if (!graph) return null;
  const id = String(nodeId);
  let node = graph.getNodeById(id) ?? graph.getNodeById(Number(id));
  if (!node && id.includes(":")) {
    // Inside a subgraph: show it on the subgraph node of the root graph.
    const outer = id.split(":")[0];
    node = graph.getNodeById(outer) ?? graph.getNodeById(Number(outer));
  }
  return node;
}

function isOurs(node) {
  const type = node?.comfyClass ?? node?.type ?? "";
  return typeof type === "string" && type.startsWith(PREFIX);
}

const tracked = new Set();

app.registerExtension({
  name: "InfiniteTalk.ProgressText",

  setup() {
    api.addEventListener("progress_text", (event) => {
      const { nodeId, text } = event.detail ?? {};
      const node = findNode(nodeId);
      if (!node || !isOurs(node)) return;
      const parsed = parseProgressText(text);
      if (!parsed) return; // other messages (e.g. the audio node's summary) stay in the native text box only
      const finished = parsed.finished ?? node.infinitetalkProgress?.finished ?? null;
      node.infinitetalkProgress = { text: String(text ?? ""), parsed, finished, stopped: false,
                                    label: badgeLabel(parsed, finished, false) };
      tracked.add(node);
      node.setDirtyCanvas?.(true, true);
    });
    api.addEventListener("execution_start", () => {
      for (const node of tracked) {
        node.infinitetalkProgress = null;
        node.setDirtyCanvas?.(true, true);
      }
      tracked.clear();
    });
    const markStopped = () => {
      for (const node of tracked) {
        const p = node.infinitetalkProgress;
        if (p && p.parsed && p.parsed.fraction < 1) {
          p.stopped = true;
          p.label = badgeLabel(p.parsed, p.finished, true); // what is on disk, not the window that was running
        }
        node.setDirtyCanvas?.(true, true);
      }
    };
    api.addEventListener("execution_error", markStopped);
    api.addEventListener("execution_interrupted", markStopped);
  },

  beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith(PREFIX)) return;
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      const result = onDrawForeground?.apply(this, arguments);
      const p = this.infinitetalkProgress;
      if (!p || this.flags?.collapsed) return result;
      const titleHeight = globalThis.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
      const text = p.label;
      ctx.save();
      ctx.font = "12px sans-serif";
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillStyle = p.stopped ? "#e88" : "#9cf";
      ctx.fillText(text, this.size[0] - 8, -titleHeight / 2);
      // A 3 px bar along the bottom edge of the title: overall progress over all windows.
      ctx.fillStyle = p.stopped ? "#a44" : "#4a8";
      ctx.fillRect(0, -3, this.size[0] * p.parsed.fraction, 3);
      ctx.restore();
      return result;
    };
  },
});
