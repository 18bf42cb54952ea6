" Drive reaper-lsp from Vim through ALE, as tests/e2e/test_vim.py runs it:
"   vim -N -u NONE -i NONE -n --not-a-term -S complete.vim
" Loads Debian's ALE and editors/vim/reaper.vim as the README says, opens $REAPER_TEST_FILE,
" appends to line $REAPER_TEST_LINE with ALE's omni completion (<C-x><C-o>), runs :ReaperStatus
" (and, with $REAPER_TEST_SIGN_IN / $REAPER_TEST_CHAT, :ReaperSignIn, :ReaperSignOut, :ReaperChat)
" and writes what happened to $REAPER_TEST_OUT as JSON; failures are written there too.

let s:result = {}

function! s:Wait(what, condition) abort
  let l:start = reltime()
  while !eval(a:condition)
    if reltimefloat(reltime(l:start)) > 20
      throw 'timed out waiting for ' . a:what
    endif
    sleep 20m
  endwhile
endfunction

function! s:Run() abort
  filetype plugin on
  packadd ale
  execute 'source ' . fnameescape($REAPER_VIM_DIR . '/reaper.vim')
  execute 'edit ' . fnameescape($REAPER_TEST_FILE)
  setlocal omnifunc=ale#completion#OmniFunc
  let s:result.linters = map(ale#linter#Get(&filetype), 'v:val.name')
  call cursor(str2nr($REAPER_TEST_LINE), 1)
  " No <Esc> in the keys: typeahead left over would cut short the wait for the answer
  " (complete_check()); feedkeys with "x" leaves Insert mode by itself.
  call feedkeys("A\<C-x>\<C-o>", 'xt')
  let s:result.items = get(b:, 'ale_completion_result', v:null)
  let s:result.text = join(getline(1, '$'), "\n") . "\n"
  let s:result.line_count = line('$')
  ReaperStatus
  call s:Wait('the status', "exists('g:reaper_lsp_last_status')")
  let s:result.status_line = ReaperStatusLine(g:reaper_lsp_last_status)
  let s:result.status_message = filter(split(execute('messages'), "\n"), "v:val =~# '^reaper-lsp [0-9]'")[-1]
  if !empty($REAPER_TEST_WAIT_MESSAGE)
    call s:Wait('a message like ' . $REAPER_TEST_WAIT_MESSAGE,
    \   "execute('messages') =~# $REAPER_TEST_WAIT_MESSAGE")
  endif
  if !empty($REAPER_TEST_SIGN_IN)
    ReaperSignIn
    call s:Wait('the sign-in code', "exists('g:reaper_lsp_last_sign_in')")
    let s:result.sign_in_code = getreg('"')
    call s:Wait('the sign-in to finish', "execute('messages') =~# 'signed in to'")
    ReaperSignOut
    call s:Wait('the sign-out', "execute('messages') =~# 'signed out of'")
  endif
  if !empty($REAPER_TEST_CHAT)
    execute 'ReaperChat ' . $REAPER_TEST_CHAT
    call s:Wait('the chat answer', "exists('g:reaper_lsp_last_chat')")
    let s:result.chat_buffer = join(getline(1, '$'), "\n")
    let s:result.chat_window = bufname('')
  endif
endfunction

try
  call s:Run()
  let s:result.messages = filter(split(execute('messages'), "\n"), "v:val =~# '^reaper-lsp: '")
catch
  let s:result.error = v:exception . ' at ' . v:throwpoint
endtry
call writefile([json_encode(s:result)], $REAPER_TEST_OUT)
qall!
