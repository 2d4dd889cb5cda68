// Dose calculator on the session page: mg/kg x weight -> mg, mg / lot concentration -> mL.
// Progressive enhancement only: the "Calculate and check" button does the same on the server.
(function () {
  "use strict";
  var form = document.getElementById("dose-form");
  if (!form) { return; }
  var perKg = document.getElementById("per_kg");
  var mgInput = document.getElementById("mg");
  var lot = document.getElementById("lot");
  var minutes = document.getElementById("minutes");
  var outMg = document.getElementById("calc-mg");
  var outMl = document.getElementById("calc-ml");
  var outRate = document.getElementById("calc-rate");
  var over = document.getElementById("calc-over");
  var kg = parseFloat(form.getAttribute("data-kg"));
  var maxMg = parseFloat(form.getAttribute("data-max-mg"));

  function number(input) {
    if (!input || input.value.trim() === "") { return NaN; }
    return parseFloat(input.value.replace(",", "."));
  }
  function round(value, places) {
    var f = Math.pow(10, places);
    return Math.round(value * f) / f;
  }
  function update() {
    var mg = perKg ? round(number(perKg) * kg, 1) : number(mgInput);
    var option = lot && lot.options[lot.selectedIndex];
    var conc = option ? parseFloat(option.getAttribute("data-concentration")) : NaN;
    var ok = isFinite(mg) && mg > 0;
    if (outMg) { outMg.textContent = ok ? String(mg) : "-"; }
    if (outMl) { outMl.textContent = ok && conc > 0 ? String(round(mg / conc, 2)) : "-"; }
    if (outRate) {
      var m = number(minutes);
      outRate.textContent = ok && m > 0 ? String(round(mg * 60 / m, 3)) : "-";
    }
    if (over) { over.hidden = !(ok && isFinite(maxMg) && mg > maxMg); }
  }
  [perKg, mgInput, lot, minutes].forEach(function (el) {
    if (el) { el.addEventListener("input", update); el.addEventListener("change", update); }
  });
})();
