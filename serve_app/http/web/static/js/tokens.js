// The API tokens page: list, create (secret shown once, copy button), revoke.
import { $, api, clearError, formatDate, h, setBusy, showError } from "./common.js";

const body = $("tokens-body");
const listError = $("tokens-error");

async function load() {
  try {
    const { tokens } = await api("GET", "/api/api_tokens");
    render(tokens);
    clearError(listError);
  } catch (error) {
    showError(listError, error);
  }
}

function render(tokens) {
  $("tokens-empty").hidden = tokens.length > 0;
  $("tokens-wrap").hidden = tokens.length === 0;
  body.replaceChildren(...tokens.map(row));
}

function row(token) {
  const actions = h("td", { className: "num" });
  const revoke = h("button", { type: "button", className: "btn btn-danger btn-small", "aria-label": `Revoke ${token.name}` }, "Revoke");
  revoke.addEventListener("click", () => confirmRevoke(actions, token));
  actions.append(revoke);
  return h(
    "tr",
    { "data-token-id": token.id },
    h("td", {}, token.name),
    h("td", {}, h("code", {}, `${token.prefix}…`)),
    h("td", { className: "hide-phone" }, formatDate(token.created_at)),
    h("td", { className: "hide-phone" }, formatDate(token.last_used)),
    actions,
  );
}

function confirmRevoke(cell, token) {
  const yes = h("button", { type: "button", className: "btn btn-danger btn-small" }, "Yes, revoke");
  const no = h("button", { type: "button", className: "btn btn-ghost btn-small" }, "Keep");
  cell.replaceChildren(h("span", { className: "note" }, "Revoke? "), yes, " ", no);
  yes.focus();
  no.addEventListener("click", () => load());
  yes.addEventListener("click", async () => {
    setBusy(yes, true);
    try {
      await api("DELETE", `/api/api_tokens/${encodeURIComponent(token.id)}`);
    } catch (error) {
      showError(listError, error);
    }
    await load();
  });
}

const form = $("token-form");
const submit = $("token-submit");
const formError = $("token-error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(formError);
  const input = $("token-name");
  const name = input.value.trim();
  if (!name) {
    input.setAttribute("aria-invalid", "true");
    showError(formError, "Give the token a name.");
    input.focus();
    return;
  }
  input.removeAttribute("aria-invalid");
  setBusy(submit, true);
  try {
    const created = await api("POST", "/api/api_tokens", { json: { name } });
    $("token-secret").textContent = created.token;
    $("token-copy-status").textContent = "";
    $("token-created").hidden = false;
    input.value = "";
    $("token-copy").focus();
    await load();
  } catch (error) {
    showError(formError, error);
  } finally {
    setBusy(submit, false);
  }
});

$("token-copy").addEventListener("click", async () => {
  const secret = $("token-secret").textContent;
  const status = $("token-copy-status");
  try {
    await navigator.clipboard.writeText(secret);
    status.textContent = "Copied to the clipboard.";
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("token-secret"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    const copied = document.execCommand && document.execCommand("copy");
    status.textContent = copied ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C) to copy.";
  }
});

load();
