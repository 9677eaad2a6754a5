// The Stats page: GET /api/stats every few seconds, meters, tables and a small chart.
import { $, api, clearError, h, showError } from "./common.js";

const INTERVAL_MS = 3000;
const HISTORY = 100; // samples: five minutes
const history = [];
const COLORS = { cpu: "#1f4fd1", ram: "#d9480f", gpu: "#2b8a3e" };
let timer = null;

function percent(used, total) {
  return total > 0 ? (100 * used) / total : 0;
}

async function poll() {
  try {
    const stats = await api("GET", "/api/stats");
    clearError($("stats-error"));
    show(stats);
  } catch (error) {
    showError($("stats-error"), error);
  }
}

function show(stats) {
  const state = $("stats-state");
  state.textContent = stats.status;
  state.className = `badge ${stats.status === "Busy" ? "run" : "ok"}`;
  $("stat-cpu").textContent = `${stats.cpu_percent.toFixed(0)}%`;
  const ramPercent = percent(stats.ram_used, stats.ram_total);
  $("stat-ram").textContent = `${ramPercent.toFixed(0)}%`;
  $("stat-ram-sub").textContent = `${stats.ram_used.toFixed(1)} of ${stats.ram_total.toFixed(1)} GB`;
  $("stat-gpus").textContent = String(stats.gpu_count);
  const gpuUse = stats.gpus.length
    ? stats.gpus.reduce((sum, g) => sum + g.utilization, 0) / stats.gpus.length
    : null;
  $("stat-gpus-sub").textContent = gpuUse === null ? "none on this node" : `${gpuUse.toFixed(0)}% busy on average`;
  const deployments = stats.deployments || [];
  const inFlight = deployments.reduce((sum, d) => sum + d.ongoing_requests, 0);
  $("stat-inflight").textContent = deployments.length ? String(Math.round(inFlight)) : "–";

  $("gpus-empty").hidden = stats.gpus.length > 0;
  $("gpus-wrap").hidden = stats.gpus.length === 0;
  $("gpus-body").replaceChildren(
    ...stats.gpus.map((g) =>
      h("tr", {}, h("td", {}, g.name), h("td", { className: "num" }, `${g.utilization.toFixed(0)}%`),
        h("td", { className: "num" }, `${g.memory_used.toFixed(1)} / ${g.memory_total.toFixed(1)} GB`)),
    ),
  );
  $("deps-empty").hidden = deployments.length > 0;
  $("deps-wrap").hidden = deployments.length === 0;
  $("deps-body").replaceChildren(
    ...deployments.map((d) =>
      h("tr", {}, h("td", {}, d.name), h("td", {}, h("span", { className: `badge ${d.status === "HEALTHY" ? "ok" : "warn"}` }, d.status)),
        h("td", { className: "num" }, `${d.replicas} / ${d.target_replicas}`),
        h("td", { className: "num" }, String(Math.round(d.ongoing_requests)))),
    ),
  );

  history.push({ cpu: stats.cpu_percent, ram: ramPercent, gpu: gpuUse });
  if (history.length > HISTORY) history.shift();
  draw();
}

function draw() {
  const canvas = $("stats-chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const style = getComputedStyle(document.body);
  const pad = { left: 36, right: 8, top: 8, bottom: 18 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = style.getPropertyValue("--muted") || "#555";
  ctx.strokeStyle = style.getPropertyValue("--border") || "#ddd";
  ctx.lineWidth = 1;
  for (const mark of [0, 25, 50, 75, 100]) {
    const y = pad.top + plotH - (mark / 100) * plotH;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(width - pad.right, y);
    ctx.stroke();
    ctx.fillText(`${mark}%`, 2, y + 4);
  }
  ctx.fillText(`last ${Math.round((HISTORY * INTERVAL_MS) / 60000)} min`, pad.left, height - 4);
  for (const key of ["cpu", "ram", "gpu"]) {
    const points = history.map((sample, i) => [i, sample[key]]).filter(([, v]) => v !== null);
    if (points.length === 0) continue;
    ctx.strokeStyle = COLORS[key];
    ctx.fillStyle = COLORS[key];
    ctx.lineWidth = 2;
    const xy = ([i, value]) => [
      pad.left + (plotW * i) / Math.max(1, HISTORY - 1),
      pad.top + plotH - (Math.min(100, value) / 100) * plotH,
    ];
    ctx.beginPath();
    points.forEach((point, n) => {
      const [x, y] = xy(point);
      if (n === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
    const [x, y] = xy(points[points.length - 1]); // the latest sample, as a dot
    ctx.beginPath();
    ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
    ctx.fill();
  }
}

function start() {
  if (timer === null) {
    poll();
    timer = setInterval(poll, INTERVAL_MS);
  }
}

function stop() {
  clearInterval(timer);
  timer = null;
}

document.addEventListener("visibilitychange", () => (document.hidden ? stop() : start()));
window.addEventListener("resize", draw);
start();
