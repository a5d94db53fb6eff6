#include "csv.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sluice::ml {

int CsvTable::Column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string CsvTable::Where(size_t row) const {
  const std::string line = std::to_string(lines[row]);
  if (files.size() < 2 || row >= file_of.size()) return line;
  return std::filesystem::path(files[file_of[row]]).filename().string() + ":" + line;
}

namespace {

std::string Trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

}  // namespace

CsvTable ReadCsv(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  CsvTable table;
  std::vector<std::string> record;
  std::string cell;
  bool quoted = false;      // inside a quoted field
  bool was_quoted = false;  // the current cell was quoted (keep its spaces)
  size_t line = 1;
  size_t record_line = 1;
  size_t quote_line = 0;
  auto end_cell = [&] {
    record.push_back(was_quoted ? cell : Trim(cell));
    cell.clear();
    was_quoted = false;
  };
  auto end_record = [&] {
    end_cell();
    const bool blank = record.size() == 1 && record[0].empty();
    if (!blank) {
      if (table.header.empty()) {
        table.header = std::move(record);
      } else if (record.size() != table.header.size()) {
        throw std::runtime_error(path.string() + ":" + std::to_string(record_line) + ": " +
                                 std::to_string(record.size()) + " cells, but the header has " +
                                 std::to_string(table.header.size()) + " columns");
      } else {
        table.rows.push_back(std::move(record));
        table.lines.push_back(record_line);
      }
    }
    record.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '"' && Trim(cell).empty()) {
      quoted = true;
      was_quoted = true;
      quote_line = line;
      cell.clear();
    } else if (c == ',') {
      end_cell();
    } else if (c == '\n') {
      end_record();
      ++line;
      record_line = line;
    } else if (c != '\r') {
      cell += c;
    }
  }
  if (quoted) {
    throw std::runtime_error(path.string() + ":" + std::to_string(quote_line) +
                             ": a quoted field is never closed (add the closing \")");
  }
  if (!cell.empty() || !record.empty()) end_record();
  if (table.header.empty())
    throw std::runtime_error(path.string() + ": empty file (no header row)");
  return table;
}

CsvTable ReadCsvFiles(const std::vector<std::filesystem::path>& paths) {
  CsvTable all;
  for (size_t f = 0; f < paths.size(); ++f) {
    CsvTable t = ReadCsv(paths[f]);
    if (f == 0) {
      all.header = t.header;
    } else if (t.header != all.header) {
      throw std::runtime_error(paths[f].string() + ": its header differs from " +
                               paths[0].string() + "'s; files read together need the same columns");
    }
    all.files.push_back(paths[f].string());
    for (size_t r = 0; r < t.rows.size(); ++r) {
      all.rows.push_back(std::move(t.rows[r]));
      all.lines.push_back(t.lines[r]);
      all.file_of.push_back(static_cast<uint32_t>(f));
    }
  }
  return all;
}

namespace {

std::string Quote(const std::string& cell) {
  if (cell.find_first_of(",\"\n\r") == std::string::npos) return cell;
  std::string out = "\"";
  for (char c : cell) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void WriteCsv(const std::filesystem::path& path, const CsvTable& table) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  auto write_row = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out << ',';
      out << Quote(row[i]);
    }
    out << '\n';
  };
  write_row(table.header);
  for (const auto& row : table.rows) write_row(row);
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

bool ParseNumber(const std::string& text, double* value) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v)) return false;
  *value = v;
  return true;
}

}  // namespace sluice::ml
