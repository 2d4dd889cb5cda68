/* Live scoring of a screening form (progressive enhancement: the form works without it).
 *
 * Sums the points of the chosen options (data-score, rendered from the Questionnaire's
 * ordinalValue / integer options and the instrument data), folds sub-scores the way the
 * instrument does (data-group + data-folds), shows the band, shows a safety alert as soon as
 * its item is answered above the limit (data-alert-*), and hides items whose enableWhen is not
 * met. The score recorded is the server's.
 */
(function () {
  "use strict";
  var form = document.querySelector("form.questionnaire");
  if (!form) { return; }

  function field(link) {
    return form.querySelector('[data-link="' + CSS.escape(link) + '"]');
  }

  function points(box) {
    var chosen = box ? box.querySelector("input[type=radio]:checked") : null;
    if (!chosen || chosen.disabled || chosen.dataset.score === undefined) { return null; }
    var value = Number(chosen.dataset.score);
    return isNaN(value) ? null : value;
  }

  function postedValue(link) {
    var box = field(link);
    if (!box || box.hidden) { return null; }
    var chosen = box.querySelector("input[type=radio]:checked");
    if (chosen) { return chosen.value; }
    var input = box.querySelector("input:not([type=radio]), textarea");
    return input && input.value !== "" ? input.value : null;
  }

  function applyEnableWhen() {
    form.querySelectorAll("[data-enable-question]").forEach(function (box) {
      var on = postedValue(box.dataset.enableQuestion) === box.dataset.enableAnswer;
      box.hidden = !on;
      box.querySelectorAll("input, textarea, select").forEach(function (input) {
        input.disabled = !on;
      });
    });
  }

  function updateScore() {
    var out = document.getElementById("live-score");
    if (!out) { return; }
    var folds = JSON.parse(out.dataset.folds || "{}");
    var bands = JSON.parse(out.dataset.bands || "[]");
    var grouped = Object.keys(folds).length > 0;
    var groups = {};
    var total = 0, answered = 0, asked = 0;
    form.querySelectorAll("[data-scored]").forEach(function (box) {
      if (box.hidden) { return; }
      asked += 1;
      var p = points(box);
      if (p === null) { return; }
      answered += 1;
      var g = box.dataset.group;
      if (grouped && g) {
        groups[g] = folds[g] === "max" ? Math.max(groups[g] || 0, p) : (groups[g] || 0) + p;
      } else if (!grouped) {
        total += p;
      }
    });
    Object.keys(groups).forEach(function (g) { total += groups[g]; });
    document.getElementById("live-total").textContent = String(total);
    var band = bands.find(function (b) { return b.low <= total && total <= b.high; });
    var badge = document.getElementById("live-band");
    badge.textContent = band && answered > 0 ? band.display : "";
    badge.hidden = !(band && answered > 0);
    document.getElementById("live-answered").textContent =
      "(" + answered + " of " + asked + " scored items answered)";
    out.hidden = false;
  }

  function updateAlerts() {
    document.querySelectorAll("[data-alert-item]").forEach(function (alert) {
      var p = points(field(alert.dataset.alertItem));
      alert.hidden = !(p !== null && p > Number(alert.dataset.alertAbove));
    });
  }

  function update() {
    applyEnableWhen();
    updateScore();
    updateAlerts();
  }

  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
}());
